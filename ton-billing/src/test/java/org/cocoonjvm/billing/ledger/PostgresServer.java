package org.cocoonjvm.billing.ledger;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * A real PostgreSQL server that the tests start themselves: {@code initdb} into a temp dir, then
 * {@code pg_ctl start} on a free loopback port, stopped when the JVM exits. PostgreSQL refuses to
 * run as root, so as root it runs as the {@code postgres} user (or {@code nobody}) via
 * {@code runuser}.
 *
 * <p>Binaries are found in {@code $COCOON_PG_BIN}, then the newest {@code /usr/lib/postgresql/N/bin}
 * (where Debian's {@code postgresql} package puts them), then {@code $PATH}. Without them the
 * calling test is skipped, unless {@code COCOON_REQUIRE_POSTGRES} is set (CI sets it after
 * installing the package), when it fails.
 */
public final class PostgresServer {
    private static PostgresServer shared;
    private static boolean missing;

    private final Path bin;
    private final Path dir;
    private final String runAs;
    private final int port;
    private final String options;
    private final AtomicInteger databases = new AtomicInteger();

    private PostgresServer(Path bin, Path dir, String runAs, int port, boolean durable) {
        this.bin = bin;
        this.dir = dir;
        this.runAs = runAs;
        this.port = port;
        this.options = "-p " + port + " -k " + dir + " -c listen_addresses=127.0.0.1 -c max_connections=200"
                + (durable ? "" : " -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
    }

    /** The server all tests in this JVM share; fsync is off, as a test's data need not outlive it. */
    public static synchronized PostgresServer shared() {
        Assumptions.assumeFalse(missing, "no PostgreSQL binaries on this machine");
        if (shared == null) {
            Optional<Path> bin = findBinaries();
            if (bin.isEmpty()) {
                if (System.getenv("COCOON_REQUIRE_POSTGRES") != null) {
                    throw new IllegalStateException("COCOON_REQUIRE_POSTGRES is set but there are no PostgreSQL binaries "
                            + "(initdb, pg_ctl) in $COCOON_PG_BIN, /usr/lib/postgresql/*/bin or $PATH");
                }
                missing = true;
                Assumptions.abort("no PostgreSQL binaries (initdb, pg_ctl) in $COCOON_PG_BIN, /usr/lib/postgresql/*/bin or $PATH");
            }
            shared = start(bin.get(), false);
        }
        return shared;
    }

    /**
     * A server of the caller's own, with PostgreSQL's durable defaults (fsync on), for benchmarks;
     * the caller stops it.
     */
    public static PostgresServer startDurable() {
        Optional<Path> bin = findBinaries();
        Assumptions.assumeTrue(bin.isPresent(), "no PostgreSQL binaries on this machine");
        return start(bin.get(), true);
    }

    /**
     * A server of the caller's own (fsync off), for tests that take it down and up again with
     * {@link #shutDown()} and {@link #startAgain()}: the shared one serves other tests meanwhile.
     * The caller stops it.
     */
    public static PostgresServer startOwn() {
        shared();   // skips or fails as the shared server would, and finds the binaries once
        return start(findBinaries().orElseThrow(), false);
    }

    /**
     * An outage: {@code pg_ctl stop -m fast}, as an operator's restart or a failover does it. Open
     * transactions are rolled back and every client connection is terminated (57P01); new ones are
     * refused until {@link #startAgain()}.
     */
    public void shutDown() {
        try {
            pg("pg_ctl", "-D", data(), "-m", "fast", "-w", "stop");
        } catch (IOException e) {
            throw new IllegalStateException("could not stop PostgreSQL", e);
        }
    }

    /**
     * A database that hangs instead of refusing (a partition, a frozen VM): the server and every
     * backend stopped with SIGSTOP, connections left open, until {@link #thaw()}.
     */
    public void freeze() {
        signalAll("-STOP");
    }

    public void thaw() {
        signalAll("-CONT");
    }

    private void signalAll(String signal) {
        try {
            String postmaster = Files.readAllLines(dir.resolve("data").resolve("postmaster.pid")).getFirst().strip();
            run(List.of("pkill", signal, "-P", postmaster), null);   // the backends, then the server
            run(List.of("kill", signal, postmaster), null);
        } catch (IOException e) {
            throw new IllegalStateException("could not signal PostgreSQL " + signal, e);
        }
    }

    /** Back on the same port and data after {@link #shutDown()}; returns once it accepts connections. */
    public void startAgain() {
        try {
            pgStart();
        } catch (IOException e) {
            throw new IllegalStateException("could not start PostgreSQL again", e);
        }
    }

    private void pgStart() throws IOException {
        pg("pg_ctl", "-D", data(), "-l", dir.resolve("server.log").toString(), "-w", "-t", "60", "-o", options, "start");
    }

    private static PostgresServer start(Path bin, boolean durable) {
        try {
            String runAs = isRoot() ? (userExists("postgres") ? "postgres" : "nobody") : null;
            Path dir = Files.createTempDirectory("cocoon-pg");
            if (runAs != null) {
                run(List.of("chown", runAs, dir.toString()), null);
            }
            PostgresServer server = new PostgresServer(bin, dir, runAs, freePort(), durable);
            server.pg("initdb", "-D", server.data(), "-U", "cocoon", "--auth=trust", "-E", "UTF8", "--no-sync");
            server.pgStart();
            Runtime.getRuntime().addShutdownHook(new Thread(server::stop));
            return server;
        } catch (IOException e) {
            throw new IllegalStateException("could not start PostgreSQL", e);
        }
    }

    /** A new empty database on this server. */
    public String newDatabaseUrl() {
        String name = "ledger_" + databases.incrementAndGet();
        try (Connection admin = DriverManager.getConnection(url("postgres"));
             Statement st = admin.createStatement()) {
            st.execute("CREATE DATABASE " + name);
        } catch (SQLException e) {
            throw new IllegalStateException("could not create database " + name, e);
        }
        return url(name);
    }

    private String url(String database) {
        return "jdbc:postgresql://127.0.0.1:" + port + "/" + database + "?user=cocoon";
    }

    public void stop() {
        try {
            pg("pg_ctl", "-D", data(), "-m", "immediate", "-w", "stop");
        } catch (RuntimeException | IOException ignored) {
            // already stopped, or the JVM is going down: the temp dir is all that is left
        }
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // best effort, in the temp dir
        }
    }

    private String data() {
        return dir.resolve("data").toString();
    }

    private void pg(String tool, String... args) throws IOException {
        List<String> command = new ArrayList<>();
        if (runAs != null) {
            command.addAll(List.of(runuser(), "-u", runAs, "--"));
        }
        command.add(bin.resolve(tool).toString());
        command.addAll(Arrays.asList(args));
        run(command, dir.resolve(tool + ".out"));
    }

    private static void run(List<String> command, Path output) throws IOException {
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        Path out = output != null ? output : Files.createTempFile("cocoon-pg-cmd", ".out");
        builder.redirectOutput(out.toFile());
        Process process = builder.start();
        try {
            if (!process.waitFor(120, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new IllegalStateException(String.join(" ", command) + " did not finish in 120 s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted running " + command, e);
        }
        String failure = process.exitValue() == 0 ? null
                : String.join(" ", command) + " exited " + process.exitValue() + ":\n" + Files.readString(out, StandardCharsets.UTF_8);
        if (output == null) {
            Files.delete(out);
        }
        if (failure != null) {
            throw new IllegalStateException(failure);
        }
    }

    static Optional<Path> findBinaries() {
        List<Path> candidates = new ArrayList<>();
        String env = System.getenv("COCOON_PG_BIN");
        if (env != null && !env.isBlank()) {
            candidates.add(Paths.get(env));
        }
        try (Stream<Path> versions = Files.list(Paths.get("/usr/lib/postgresql"))) {
            versions.map(v -> v.resolve("bin"))
                    .sorted(Comparator.comparingInt(PostgresServer::majorVersion).reversed())
                    .forEach(candidates::add);
        } catch (IOException absent) {
            // no Debian package: try PATH
        }
        for (String entry : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!entry.isBlank()) {
                candidates.add(Paths.get(entry));
            }
        }
        return candidates.stream()
                .filter(d -> Files.isExecutable(d.resolve("initdb")) && Files.isExecutable(d.resolve("pg_ctl")))
                .findFirst();
    }

    private static int majorVersion(Path bin) {
        try {
            return Integer.parseInt(bin.getParent().getFileName().toString());
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /** Root's PATH has sbin; a CI runner's may not. */
    private static String runuser() {
        return Stream.of("/usr/sbin/runuser", "/sbin/runuser").filter(p -> Files.isExecutable(Paths.get(p)))
                .findFirst().orElse("runuser");
    }

    private static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    private static boolean userExists(String user) {
        try {
            return new ProcessBuilder("id", "-u", user).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }
}
