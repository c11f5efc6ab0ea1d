package org.cocoonjvm.protocol.metrics;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;

/**
 * The process's own metrics, beside the gateway's and the worker's (Micrometer's JVM and system
 * binders: {@code jvm_memory_*}, {@code jvm_gc_pause_seconds}, {@code jvm_threads_*},
 * {@code process_cpu_usage}, {@code process_files_open_files}, ...): heap held by idle streams, GC
 * pauses behind a latency spike and file descriptors near their limit are what an operator looks
 * at next. One list, so that both nodes' dashboards find the same series.
 */
public final class ProcessMetrics implements AutoCloseable {
    /** Prometheus text exposition format 0.0.4, which both nodes' {@code /metrics} answer in. */
    public static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    private final JvmGcMetrics gc = new JvmGcMetrics();

    private ProcessMetrics() {}

    public static ProcessMetrics bindTo(MeterRegistry meters) {
        ProcessMetrics bound = new ProcessMetrics();
        new JvmMemoryMetrics().bindTo(meters);
        bound.gc.bindTo(meters);
        new JvmThreadMetrics().bindTo(meters);
        new ClassLoaderMetrics().bindTo(meters);
        new ProcessorMetrics().bindTo(meters);
        new UptimeMetrics().bindTo(meters);
        new FileDescriptorMetrics().bindTo(meters);
        return bound;
    }

    /** Stops listening for the JVM's GC notifications, which would otherwise keep the registry alive. */
    @Override
    public void close() {
        gc.close();
    }
}
