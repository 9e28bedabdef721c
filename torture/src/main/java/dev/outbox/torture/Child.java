package dev.outbox.torture;

import java.io.File;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A relay or consumer in a JVM of its own, which the run kills, pauses and restarts. A restart
 * starts a new process with the same command and environment, appending to the same log.
 */
final class Child implements AutoCloseable {
    /** What the process is. */
    enum Role {
        RELAY,
        CONSUMER
    }

    private final String name;
    private final Role role;
    private final List<String> command;
    private final Map<String, String> env;
    private final Path log;
    private final String readyLine;
    private volatile Process process;
    /** Where the current process's output starts in the log, and whether it has printed {@link #readyLine} since. */
    private volatile long logOffset;

    private volatile boolean ready;

    /**
     * @param readyLine what the process prints once it runs (a relay that claimed its shards, a
     *     consumer that started); until then it is not a target of faults
     */
    Child(String name, Role role, List<String> command, Map<String, String> env, Path log, String readyLine) {
        this.name = name;
        this.role = role;
        this.command = List.copyOf(command);
        this.env = Map.copyOf(env);
        this.log = log;
        this.readyLine = readyLine;
    }

    String name() {
        return name;
    }

    Role role() {
        return role;
    }

    synchronized void start() throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().keySet().removeIf(k -> k.startsWith("OUTBOX_") || k.startsWith("TORTURE_"));
        pb.environment().putAll(env);
        pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        logOffset = Files.exists(log) ? Files.size(log) : 0;
        ready = false;
        process = pb.start();
    }

    /**
     * @return whether the current process has printed its ready line: a JVM still starting (a minute
     *     on a loaded machine) is no target for a fault, which would prove nothing
     */
    boolean ready() {
        if (ready) {
            return true;
        }
        try (FileChannel in = FileChannel.open(log)) {
            in.position(logOffset);
            String text = new String(Channels.newInputStream(in).readAllBytes(), StandardCharsets.UTF_8);
            ready = text.contains(readyLine);
        } catch (IOException e) {
            return false;
        }
        return ready;
    }

    synchronized boolean isAlive() {
        return process != null && process.isAlive();
    }

    /** SIGKILL, then a new process in its place. */
    synchronized void killAndRestart() throws IOException, InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
        start();
    }

    /** Restarts a process that exited by itself (a relay that gave up on startup, say). */
    synchronized boolean restartIfDead() throws IOException {
        if (process.isAlive()) {
            return false;
        }
        start();
        return true;
    }

    /** SIGSTOP: the process freezes with its connections, leases and group membership as they were. */
    synchronized void pause() throws IOException, InterruptedException {
        signal("STOP");
    }

    /** SIGCONT. */
    synchronized void resume() throws IOException, InterruptedException {
        signal("CONT");
    }

    private void signal(String sig) throws IOException, InterruptedException {
        if (process == null || !process.isAlive()) {
            return;
        }
        Process kill = new ProcessBuilder("kill", "-" + sig, String.valueOf(process.pid()))
                .redirectErrorStream(true)
                .start();
        kill.getInputStream().readAllBytes();
        kill.waitFor(10, TimeUnit.SECONDS);
    }

    /** SIGKILL without waiting or locking, for a shutdown hook of the run. */
    void destroyNow() {
        Process p = process;
        if (p != null) {
            p.destroyForcibly();
        }
    }

    /** SIGTERM and wait: the relay hands its leases back, the consumer commits what it did. */
    @Override
    public void close() throws InterruptedException {
        closeAll(List.of(this));
    }

    /**
     * SIGTERM to every process at once, then waits for each: they stop side by side (a JVM that
     * writes its class-data archive on its way out takes seconds).
     */
    static void closeAll(List<Child> children) throws InterruptedException {
        for (Child c : children) {
            synchronized (c) {
                if (c.process != null) {
                    c.process.destroy();
                }
            }
        }
        for (Child c : children) {
            synchronized (c) {
                if (c.process != null && !c.process.waitFor(45, TimeUnit.SECONDS)) {
                    c.process.destroyForcibly();
                    c.process.waitFor(30, TimeUnit.SECONDS);
                }
            }
        }
    }

    @Override
    public String toString() {
        return name + " (log " + log + ")";
    }
}
