package dev.outbox.torture;

import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * What a run does: its size, how long the faults go on, how many of each kind, and the seed that
 * draws their times and targets.
 *
 * @param messages messages the writers commit (rolled-back ones come on top)
 * @param duration how long writing and faults go on; the writers spread the messages over it
 * @param keys keys the messages are spread over
 * @param writers writer threads
 * @param rollbackRate share of writer transactions rolled back on purpose after the append
 * @param httpOperations operations sent through the orders service with an Idempotency-Key
 * @param lostResponseRate share of committed HTTP responses lost on purpose
 * @param relays relay processes
 * @param consumers consumer processes
 * @param faults how many faults of each kind
 * @param duplicateRate share of records delivered a second time
 * @param seed draws fault times and targets, keys, amounts and rollbacks
 * @param drainTimeout how long to wait, after the faults, for the outbox and the consumers to drain
 * @param relayJar the relay's runnable jar; null to look for it next to this module
 */
public record Options(
        int messages,
        Duration duration,
        int keys,
        int writers,
        double rollbackRate,
        int httpOperations,
        double lostResponseRate,
        int relays,
        int consumers,
        Map<Fault, Integer> faults,
        double duplicateRate,
        long seed,
        Duration drainTimeout,
        Path relayJar) {

    /** @throws IllegalArgumentException naming the option whose value is out of range */
    public Options {
        require(messages >= 1, "--messages must be at least 1, got " + messages);
        require(!duration.isNegative() && duration.toSeconds() >= 5, "--duration must be at least 5s, got " + duration);
        require(keys >= 1 && keys <= 100_000, "--keys must be between 1 and 100000, got " + keys);
        require(writers >= 1 && writers <= 64, "--writers must be between 1 and 64, got " + writers);
        require(
                rollbackRate >= 0 && rollbackRate < 1,
                "--rollback-rate must be at least 0 and below 1, got " + rollbackRate);
        require(httpOperations >= 0, "--http-operations must be at least 0, got " + httpOperations);
        require(
                lostResponseRate >= 0 && lostResponseRate <= 0.5,
                "--lost-response-rate must be between 0 and 0.5, got " + lostResponseRate);
        require(relays >= 2 && relays <= 8, "--relays must be between 2 and 8, got " + relays);
        require(consumers >= 2 && consumers <= 8, "--consumers must be between 2 and 8, got " + consumers);
        require(
                duplicateRate >= 0 && duplicateRate <= 1,
                "--duplicate-rate must be between 0 and 1, got " + duplicateRate);
        faults = Map.copyOf(faults);
        faults.forEach((k, v) -> require(v >= 0, "--" + k.option() + " must be at least 0, got " + v));
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    /** The short run of the test suite: about 20,000 messages and 10 faults of each kind. */
    static Options defaults() {
        Map<Fault, Integer> faults = new HashMap<>();
        for (Fault f : Fault.scheduled()) {
            faults.put(f, 10);
        }
        return new Options(
                20_000,
                Duration.ofSeconds(70),
                300,
                8,
                0.05,
                300,
                0.1,
                2,
                2,
                faults,
                0.02,
                2026_12_03L,
                Duration.ofMinutes(3),
                null);
    }

    /** @return the usage text */
    static String usage() {
        StringBuilder b = new StringBuilder("usage: ./dev torture [options]\n");
        Options d = defaults();
        b.append("  --messages N            messages committed (default ")
                .append(d.messages())
                .append(")\n");
        b.append("  --duration D            writing and faults, e.g. 70s, 30m (default ")
                .append(d.duration().toSeconds())
                .append("s)\n");
        b.append("  --keys N                keys (default ").append(d.keys()).append(")\n");
        b.append("  --writers N             writer threads (default ")
                .append(d.writers())
                .append(")\n");
        b.append("  --rollback-rate R       share of transactions rolled back on purpose (default ")
                .append(d.rollbackRate())
                .append(")\n");
        b.append("  --http-operations N     orders sent over HTTP with an Idempotency-Key (default ")
                .append(d.httpOperations())
                .append(")\n");
        b.append("  --lost-response-rate R  share of HTTP responses lost after commit (default ")
                .append(d.lostResponseRate())
                .append(")\n");
        b.append("  --relays N              relay processes (default ")
                .append(d.relays())
                .append(")\n");
        b.append("  --consumers N           consumer processes (default ")
                .append(d.consumers())
                .append(")\n");
        for (Fault f : Fault.scheduled()) {
            b.append(String.format(
                    "  --%-21s %s (default %d)%n",
                    f.option() + " N", f.description(), d.faults().get(f)));
        }
        b.append("  --faults N              sets every count above at once\n");
        b.append("  --duplicate-rate R      share of records delivered twice (default ")
                .append(d.duplicateRate())
                .append(")\n");
        b.append("  --seed N                seed of the fault schedule and the writers (default ")
                .append(d.seed())
                .append(")\n");
        b.append("  --drain-timeout D       wait for the pipeline to drain after the faults (default ")
                .append(d.drainTimeout().toSeconds())
                .append("s)\n");
        b.append("  --relay-jar PATH        the relay's runnable jar (outbox-relay/target/outbox-relay-*-all.jar)\n");
        b.append(
                "PostgreSQL binaries for the private instance: OUTBOX_TEST_PG_BINDIR, else /usr/lib/postgresql/<newest>/bin\n");
        return b.toString();
    }

    /**
     * @param args {@code --name value} or {@code --name=value} pairs
     * @return the options
     * @throws IllegalArgumentException for an unknown option or a bad value, naming it
     */
    static Options parse(String... args) {
        Map<String, String> given = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                throw new IllegalArgumentException(usage());
            }
            if (!a.startsWith("--")) {
                throw new IllegalArgumentException(
                        "unexpected argument '" + a + "'; options look like --messages 20000 (see --help)");
            }
            String[] kv = a.substring(2).split("=", 2);
            String value = kv.length == 2 ? kv[1] : (i + 1 < args.length ? args[++i] : null);
            if (value == null) {
                throw new IllegalArgumentException("option --" + kv[0] + " needs a value");
            }
            given.put(kv[0], value);
        }
        Options d = defaults();
        Set<String> known = new HashSet<>(Set.of(
                "messages",
                "duration",
                "keys",
                "writers",
                "rollback-rate",
                "http-operations",
                "lost-response-rate",
                "relays",
                "consumers",
                "faults",
                "duplicate-rate",
                "seed",
                "drain-timeout",
                "relay-jar"));
        Fault.scheduled().forEach(f -> known.add(f.option()));
        for (String k : given.keySet()) {
            if (!known.contains(k)) {
                throw new IllegalArgumentException("unknown option --" + k + "; see --help");
            }
        }
        Map<Fault, Integer> faults = new HashMap<>(d.faults());
        if (given.containsKey("faults")) {
            int n = integer(given, "faults", 0);
            faults.replaceAll((k, v) -> n);
        }
        for (Fault f : Fault.scheduled()) {
            faults.put(f, integer(given, f.option(), faults.get(f)));
        }
        return new Options(
                integer(given, "messages", d.messages()),
                duration(given, "duration", d.duration()),
                integer(given, "keys", d.keys()),
                integer(given, "writers", d.writers()),
                decimal(given, "rollback-rate", d.rollbackRate()),
                integer(given, "http-operations", d.httpOperations()),
                decimal(given, "lost-response-rate", d.lostResponseRate()),
                integer(given, "relays", d.relays()),
                integer(given, "consumers", d.consumers()),
                faults,
                decimal(given, "duplicate-rate", d.duplicateRate()),
                given.containsKey("seed") ? longValue(given, "seed") : d.seed(),
                duration(given, "drain-timeout", d.drainTimeout()),
                given.containsKey("relay-jar") ? Path.of(given.get("relay-jar")) : d.relayJar());
    }

    /** @return these options with another relay jar */
    Options withRelayJar(Path jar) {
        return new Options(
                messages,
                duration,
                keys,
                writers,
                rollbackRate,
                httpOperations,
                lostResponseRate,
                relays,
                consumers,
                faults,
                duplicateRate,
                seed,
                drainTimeout,
                jar);
    }

    private static int integer(Map<String, String> given, String name, int fallback) {
        String v = given.get(name);
        try {
            return v == null ? fallback : Integer.parseInt(v.replace("_", "").replace(",", ""));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be a whole number, got '" + v + "'");
        }
    }

    private static long longValue(Map<String, String> given, String name) {
        try {
            return Long.parseLong(given.get(name));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be a whole number, got '" + given.get(name) + "'");
        }
    }

    private static double decimal(Map<String, String> given, String name, double fallback) {
        String v = given.get(name);
        try {
            return v == null ? fallback : Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be a number such as 0.05, got '" + v + "'");
        }
    }

    private static Duration duration(Map<String, String> given, String name, Duration fallback) {
        String v = given.get(name);
        if (v == null) {
            return fallback;
        }
        var m = Pattern.compile("(\\d+)(ms|s|m|h)").matcher(v.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException(
                    "--" + name + " must be a duration such as 90s, 30m or 2h, got '" + v + "'");
        }
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2)) {
            case "ms" -> Duration.ofMillis(n);
            case "s" -> Duration.ofSeconds(n);
            case "m" -> Duration.ofMinutes(n);
            default -> Duration.ofHours(n);
        };
    }
}
