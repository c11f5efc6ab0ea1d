package org.cocoonjvm.gateway;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.util.List;
import org.slf4j.LoggerFactory;

/** What one logger (and those under it) logged while open: a node's log, as its operator reads it. */
final class LogCapture implements AutoCloseable {
    private final Logger logger;
    private final ListAppender<ILoggingEvent> events = new ListAppender<>();

    LogCapture(Class<?> of) {
        this(of.getName());
    }

    /** @param name a logger, or {@code ROOT} for everything */
    LogCapture(String name) {
        logger = (Logger) LoggerFactory.getLogger(name);
        events.start();
        logger.addAppender(events);
    }

    /** Each line's level and formatted message, e.g. {@code WARN worker 'w' refused ...}. */
    List<String> lines() {
        synchronized (events) {
            return List.copyOf(events.list).stream().map(e -> e.getLevel() + " " + e.getFormattedMessage()
                    + (e.getThrowableProxy() == null ? "" : " " + e.getThrowableProxy().getClassName() + ": "
                    + e.getThrowableProxy().getMessage())).toList();
        }
    }

    /** Lines of the loggers whose name starts with {@code prefix}: one node's, where several share the JVM. */
    List<String> linesFrom(String prefix) {
        synchronized (events) {
            return List.copyOf(events.list).stream().filter(e -> e.getLoggerName().startsWith(prefix))
                    .map(e -> e.getLevel() + " " + e.getFormattedMessage()).toList();
        }
    }

    List<String> linesAt(Level level) {
        return lines().stream().filter(l -> l.startsWith(level + " ")).toList();
    }

    @Override
    public void close() {
        logger.detachAppender(events);
    }
}
