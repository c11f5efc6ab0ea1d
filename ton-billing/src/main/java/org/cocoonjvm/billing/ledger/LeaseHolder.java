package org.cocoonjvm.billing.ledger;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;

/**
 * The process holding a gateway's lease, as the start that took it recorded it: its host name (as
 * the operating system reports it: in a container, the container's), its process id, the instant
 * that process started (null where the system does not say), the PID namespace its process id
 * belongs to (Linux's; null elsewhere, and for holders recorded before it was), and the id of the
 * data directory it held locked while it ran (null without one, and for holders recorded before
 * it was). A later start on the same host, in the same PID namespace, can then tell whether that
 * process still runs: a process id can be reused, its start time with it cannot. One host name
 * does not make one namespace: host-network containers share the host's name, so do containers
 * given a fixed one; and a container restarted in place gets a new namespace, so its pid says
 * nothing there. The data directory does: a start that holds its lock knows the holder that held
 * it is gone (review U, U-2).
 */
public record LeaseHolder(String host, long pid, Instant startedAt, String pidNamespace, String dataDir) {
    private static final LeaseHolder CURRENT = of(ProcessHandle.current());

    public LeaseHolder {
        Objects.requireNonNull(host, "host");
    }

    /** A holder recorded without its PID namespace or data dir: judged by its host name alone, as before they were recorded. */
    public LeaseHolder(String host, long pid, Instant startedAt) {
        this(host, pid, startedAt, null, null);
    }

    /** This holder, holding the data directory {@code dataDir} (null: none). */
    LeaseHolder withDataDir(String dataDir) {
        return new LeaseHolder(host, pid, startedAt, pidNamespace, dataDir);
    }

    /** This process. */
    public static LeaseHolder current() {
        return CURRENT;
    }

    private static LeaseHolder of(ProcessHandle process) {
        return new LeaseHolder(hostName(), process.pid(), process.info().startInstant().orElse(null), currentPidNamespace(), null);
    }

    /** Linux's name for this process's PID namespace ({@code pid:[4026531836]}); null where there is none. */
    static String currentPidNamespace() {
        try {
            String link = Files.readSymbolicLink(Path.of("/proc/self/ns/pid")).toString();
            return link.length() > 64 ? null : link;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** Linux's own name for this host (no DNS lookup); elsewhere, Java's. At most 255 characters, as stored. */
    static String hostName() {
        String name;
        try {
            name = Files.readString(Path.of("/proc/sys/kernel/hostname")).strip();
        } catch (IOException | RuntimeException e) {
            try {
                name = InetAddress.getLocalHost().getHostName();
            } catch (IOException | RuntimeException e2) {
                name = "";
            }
        }
        name = name.isBlank() ? "unknown-host" : name;
        return name.length() > 255 ? name.substring(0, 255) : name;
    }

    /** Whether this holder names this very process (another book opened in this JVM). */
    boolean isCurrentProcess() {
        return sameProcess(CURRENT);
    }

    private boolean sameProcess(LeaseHolder other) {
        return host.equals(other.host) && pid == other.pid && Objects.equals(millis(startedAt), millis(other.startedAt))
                && (pidNamespace == null || other.pidNamespace == null || pidNamespace.equals(other.pidNamespace));
    }

    /**
     * Whether this holder ran on this host in another PID namespace than this process's: its pid
     * names another process here, or none, so nothing here tells whether it still runs.
     */
    public boolean inAnotherPidNamespaceOfThisHost() {
        return host.equals(CURRENT.host) && pidNamespace != null && CURRENT.pidNamespace != null
                && !pidNamespace.equals(CURRENT.pidNamespace);
    }

    /**
     * Whether this holder, recorded on this host, no longer runs: no process has its id, or the one
     * that has it started at another instant (a later process that reused the id). False when it
     * may run: on another host or in another PID namespace (nothing here can tell: its process id
     * means another process here), or when a start time is unknown.
     */
    boolean goneFromThisHost() {
        if (!host.equals(CURRENT.host) || pidNamespace != null && !pidNamespace.equals(CURRENT.pidNamespace)) {
            return false;
        }
        Optional<ProcessHandle> process = ProcessHandle.of(pid);
        if (process.isEmpty() || !process.get().isAlive()) {
            return true;
        }
        Instant started = process.get().info().startInstant().orElse(null);
        return startedAt != null && started != null && !millis(startedAt).equals(millis(started));
    }

    private static Long millis(Instant instant) {
        return instant == null ? null : instant.toEpochMilli();
    }

    @Override
    public String toString() {
        // The namespace says why a pid this host shows running, or not, may not be the holder.
        return "pid " + pid + " on " + host + (pidNamespace == null ? "" : " in PID namespace " + pidNamespace);
    }
}
