package org.cocoonjvm.worker.kernels;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The kernel library (cocoon_kernels.h) bound through the FFM API. The .so files ship inside the
 * worker jar under {@code native/linux-x86_64/}; they are copied to a private directory and loaded
 * from there. The CUDA build is chosen when it reports a visible GPU, the CPU build otherwise;
 * {@code -Dcocoon.kernels=cpu|cuda} forces one.
 */
public final class KernelLibrary {
    static final int ABI_VERSION = 1;
    private static final String RESOURCE_DIR = "native/linux-x86_64/";

    private static volatile KernelLibrary instance;

    final String backend;
    final MethodHandle modelCreate;
    final MethodHandle modelSetTensor;
    final MethodHandle modelFinalize;
    final MethodHandle kvInit;
    final MethodHandle kvBytes;
    final MethodHandle step;
    final MethodHandle seqFree;
    final MethodHandle modelPeakBytes;
    final MethodHandle lastError;
    final MethodHandle modelFree;

    private KernelLibrary(SymbolLookup lib) {
        Linker linker = Linker.nativeLinker();
        try {
            int abi = (int) bind(linker, lib, "ck_abi_version", FunctionDescriptor.of(JAVA_INT)).invokeExact();
            if (abi != ABI_VERSION) {
                throw new IllegalStateException("kernel library ABI " + abi + ", this worker needs " + ABI_VERSION);
            }
            MemorySegment name = (MemorySegment) bind(linker, lib, "ck_backend_name", FunctionDescriptor.of(ADDRESS)).invokeExact();
            backend = name.reinterpret(256).getString(0);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        modelCreate = bind(linker, lib, "ck_model_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        modelSetTensor = bind(linker, lib, "ck_model_set_tensor",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG));
        modelFinalize = bind(linker, lib, "ck_model_finalize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        kvInit = bind(linker, lib, "ck_kv_init", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT));
        kvBytes = bind(linker, lib, "ck_kv_bytes", FunctionDescriptor.of(JAVA_LONG, ADDRESS, JAVA_INT, JAVA_INT));
        step = bind(linker, lib, "ck_step", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        seqFree = bind(linker, lib, "ck_seq_free", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        modelPeakBytes = bind(linker, lib, "ck_model_peak_bytes", FunctionDescriptor.of(JAVA_LONG, ADDRESS));
        lastError = bind(linker, lib, "ck_last_error", FunctionDescriptor.of(ADDRESS, ADDRESS));
        modelFree = bind(linker, lib, "ck_model_free", FunctionDescriptor.ofVoid(ADDRESS));
    }

    /** The library for this machine, loaded once per process. */
    public static KernelLibrary get() {
        KernelLibrary lib = instance;
        if (lib == null) {
            synchronized (KernelLibrary.class) {
                lib = instance;
                if (lib == null) {
                    lib = instance = load(System.getProperty("cocoon.kernels", "auto"));
                }
            }
        }
        return lib;
    }

    /** {@code cpu-avx2}, {@code cuda-sm90}, …: what the loaded build runs on. */
    public String backend() {
        return backend;
    }

    static KernelLibrary load(String choice) {
        Path dir;
        try {
            dir = Files.createTempDirectory("cocoon-kernels-");
            dir.toFile().deleteOnExit();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a directory for the kernel library", e);
        }
        if (!choice.equals("cpu")) {
            Path cuda = extract(dir, "libcocoon_kernels_cuda.so");
            if (cuda != null) {
                SymbolLookup lookup = SymbolLookup.libraryLookup(cuda, Arena.global());
                if (available(lookup)) {
                    return new KernelLibrary(lookup);
                }
            }
            if (choice.equals("cuda")) {
                // A choice the operator made and can undo: one line at the command line, not a trace.
                throw new KernelException("loading the CUDA kernels", KernelException.BACKEND,
                        "-Dcocoon.kernels=cuda, but this build has no CUDA library or no GPU is visible (-Dcocoon.kernels=cpu"
                                + " or auto runs on the CPU)");
            }
        }
        Path cpu = extract(dir, "libcocoon_kernels.so");
        if (cpu == null) {
            throw new IllegalStateException("the worker jar has no " + RESOURCE_DIR + "libcocoon_kernels.so; "
                    + "build the worker module with its native step (./mvnw package)");
        }
        return new KernelLibrary(SymbolLookup.libraryLookup(cpu, Arena.global()));
    }

    private static boolean available(SymbolLookup lookup) {
        try {
            return (int) bind(Linker.nativeLinker(), lookup, "ck_backend_available", FunctionDescriptor.of(JAVA_INT))
                    .invokeExact() == 1;
        } catch (Throwable t) {
            return false;
        }
    }

    private static Path extract(Path dir, String file) {
        try (InputStream in = KernelLibrary.class.getClassLoader().getResourceAsStream(RESOURCE_DIR + file)) {
            if (in == null) {
                return null;
            }
            Path target = dir.resolve(file);
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
            target.toFile().deleteOnExit();
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract " + file, e);
        }
    }

    private static MethodHandle bind(Linker linker, SymbolLookup lib, String name, FunctionDescriptor descriptor) {
        MemorySegment symbol = lib.find(name).orElseThrow(() -> new IllegalStateException("kernel library lacks " + name));
        return linker.downcallHandle(symbol, descriptor);
    }
}
