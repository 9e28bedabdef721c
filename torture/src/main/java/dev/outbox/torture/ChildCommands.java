package dev.outbox.torture;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The torture run's child processes: the environment and JVM command of a relay (the runnable jar)
 * and of a {@link TortureConsumer}.
 */
final class ChildCommands {
    private ChildCommands() {}

    static Child relay(String name, String jdbcUrl, String bootstrap, Path logs, Path relayJar) {
        Map<String, String> env = new HashMap<>();
        env.put("OUTBOX_RELAY_JDBC_URL", jdbcUrl);
        env.put("OUTBOX_RELAY_DB_USER", "postgres");
        env.put("OUTBOX_RELAY_BOOTSTRAP_SERVERS", bootstrap);
        env.put("OUTBOX_RELAY_INSTANCE_ID", name);
        env.put("OUTBOX_RELAY_HTTP_PORT", "0");
        env.put("OUTBOX_RELAY_LEASE_DURATION", Torture.LEASE.toSeconds() + "s");
        env.put("OUTBOX_RELAY_IDLE_POLL_INTERVAL", "200ms");
        env.put("OUTBOX_RELAY_BACKOFF_BASE", "50ms");
        env.put("OUTBOX_RELAY_BACKOFF_CAP", "1s");
        env.put("OUTBOX_RELAY_STARTUP_TIMEOUT", "60s");
        // the broker is down for seconds every few seconds: a breaker that stays open 10 s (the default)
        // would let the relays publish nothing during the schedule, only in the drain
        env.put("OUTBOX_RELAY_BREAKER_OPEN_DURATION", "2s");
        // below the topic's timestamp bound, which is below the lease's margin (ENGINE.md, "Fencing on the Kafka side")
        env.put("OUTBOX_RELAY_KAFKA_DELIVERY_TIMEOUT_MS", String.valueOf(Torture.DELIVERY_TIMEOUT.toMillis()));
        env.put("OUTBOX_RELAY_KAFKA_REQUEST_TIMEOUT_MS", String.valueOf(Torture.DELIVERY_TIMEOUT.toMillis()));
        List<String> command = jvm("relay", "-jar", relayJar.toString());
        return new Child(
                name,
                Child.Role.RELAY,
                command,
                env,
                logs.resolve(name + ".log"),
                "running; SIGTERM stops it gracefully");
    }

    static Child consumer(String name, String jdbcUrl, String bootstrap, Path logs) {
        Map<String, String> env = Map.of(
                "TORTURE_BOOTSTRAP",
                bootstrap,
                "TORTURE_JDBC_URL",
                jdbcUrl,
                "TORTURE_TOPIC",
                Torture.TOPIC,
                "TORTURE_INSTANCE",
                name);
        List<String> command =
                jvm("consumer", "-cp", System.getProperty("java.class.path"), TortureConsumer.class.getName());
        return new Child(name, Child.Role.CONSUMER, command, env, logs.resolve(name + ".log"), TortureConsumer.READY);
    }

    /**
     * A child JVM's command: small heap, C1 only, and a class-data archive kept between runs (made
     * when a child exits normally), which cuts the class loading of every restart after a SIGKILL.
     * The archive's name carries a hash of the class path, so that runs from different builds at the
     * same time (a long run next to the test suite's) do not overwrite each other's archive: the JDK
     * would find it invalid at every start and dump it again at every normal exit, which takes
     * seconds. A class path with a directory (the test suite's {@code target/classes}) cannot be
     * archived, so such a child runs without one. The system property {@value Torture#CLASS_DATA_ARCHIVE}
     * set to {@code false} turns the archive off: the test suite runs each freshly built jar once,
     * so an archive would never be used, and writing it when the children stop costs 6 to 20 s on
     * a loaded machine.
     */
    private static List<String> jvm(String role, String... main) {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1"));
        boolean directories = Stream.of(main)
                .flatMap(a -> Stream.of(a.split(File.pathSeparator)))
                .anyMatch(p -> !p.isEmpty() && Files.isDirectory(Path.of(p)));
        if (!directories && Boolean.parseBoolean(System.getProperty(Torture.CLASS_DATA_ARCHIVE, "true"))) {
            Path archive = Path.of(
                    System.getProperty("java.io.tmpdir"),
                    "outbox-torture-" + role + "-" + Runtime.version().feature() + "-"
                            + Integer.toHexString(String.join("\n", main).hashCode()) + ".jsa");
            command.addAll(List.of(
                    "-XX:+AutoCreateSharedArchive",
                    "-XX:SharedArchiveFile=" + archive,
                    "-Xlog:cds=off",
                    "-Xlog:cds+dynamic=off"));
        }
        command.addAll(List.of(main));
        return command;
    }
}
