package dev.outbox.bench.relay;

import dev.outbox.relay.Relay;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The relay benchmark's command line: {@code --messages N} (backlog per batch size, default 200000),
 * {@code --batch-sizes a,b,c} (default 100,500,2000), {@code --latency-samples N} (default 500),
 * {@code --skip-million} (skip the 1,000,000-message drain), {@code --million-batch-size N} (default
 * 500), {@code --partitions N} (topic partitions, default 8), {@code --keys N} (distinct keys, default
 * 10000), {@code --payload-bytes N} (default 1024), {@code --workers N} (relay worker threads, default
 * the relay's default), {@code --producer k=v,k=v} (extra producer properties for the relay and the
 * plain producer alike), {@code --warmup N} (messages sent through both, unreported, before
 * measuring; default 50000, 0 to skip), {@code --steady-seconds N} (seconds per steady load level,
 * default 15, 0 to skip the idle cost and the steady loads), {@code --steady-rates a,b,c} (the steady
 * loads in messages per second, 0 for the probe messages alone; default a quarter and half of the best
 * drain rate), {@code
 * --probe-intervals a,b/c,...} (the steady part once per entry, each with a relay of its own, in the
 * order given: {@code I} sets the probe interval to I ms, {@code I/L} also the probe interval under
 * load to L ms; default the relay's), {@code --compare-listen} (idle latency
 * also with the opt-in LISTEN wake-up, then with the probe again), {@code --compare-debezium} (run
 * everything on a private PostgreSQL with {@code wal_level=logical} and, after the drains, compare the
 * relay with Debezium's embedded engine: see {@link DebeziumComparison}), {@code --compare-seconds N}
 * (seconds per level of that comparison, default 15), {@code --compare-rounds N} (its alternating
 * rounds, default 2), {@code --vacuum-after-rows N} (the relays' {@code vacuumAfterRows}, default the
 * relay's; 0 leaves the table to autovacuum), {@code --statements} (run on a private PostgreSQL with
 * {@code pg_stat_statements} and print, for each steady load level, the statements that took the most
 * time in it), {@code --relay-process} (after the idle latency, the same again with the relay's
 * command-line process in a JVM of its own, and that process's idle cost), {@code --reindex-after-drain}
 * (rebuild the outbox table's indexes with {@code REINDEX TABLE CONCURRENTLY} between the drains and
 * the steady loads, as {@code doctor}'s {@code outbox-index-size} check advises after a backlog; the
 * index sizes before the steady loads are reported either way), {@code --out FILE} (also
 * write the summary there). See {@code
 * benchmarks/RELAY.md}.
 */
record RelayOptions(
        int messages,
        int[] batchSizes,
        int latencySamples,
        boolean skipMillion,
        int millionBatchSize,
        int partitions,
        int keys,
        int payloadBytes,
        int workers,
        Map<String, String> producer,
        Path out,
        int warmup,
        int steadySeconds,
        int[] steadyRates,
        List<ProbeIntervals> probeIntervals,
        boolean compareListen,
        boolean compareDebezium,
        int compareSeconds,
        int compareRounds,
        int vacuumAfterRows,
        boolean statements,
        boolean relayProcess,
        boolean reindexAfterDrain) {

    /**
     * One entry of {@code --probe-intervals}.
     *
     * @param probeMs the relay's probe interval in ms
     * @param underLoadMs its probe interval under load in ms, or 0 for the relay's default
     */
    record ProbeIntervals(int probeMs, int underLoadMs) {
        /** @return {@code I} or {@code I/L}, both positive */
        static ProbeIntervals parse(String name, String entry) {
            String[] parts = entry.split("/", -1);
            if (parts.length > 2) {
                throw new IllegalArgumentException(
                        name + " takes entries of the form I or I/L (milliseconds), got '" + entry + "'");
            }
            return new ProbeIntervals(
                    positive(name, parts[0].trim()), parts.length == 2 ? positive(name, parts[1].trim()) : 0);
        }

        /** @return the entry as the report names it */
        String describe() {
            return "probe interval " + probeMs + " ms, under load "
                    + (underLoadMs > 0 ? underLoadMs + " ms" : "the relay's default");
        }
    }

    /** @return whether the benchmark runs on a private PostgreSQL of its own (for Debezium, or pg_stat_statements) */
    boolean privateServer() {
        return compareDebezium || statements;
    }

    static RelayOptions parse(String[] args) {
        int messages = 200_000;
        int[] batchSizes = {100, 500, 2_000};
        int latencySamples = 500;
        boolean skipMillion = false;
        int millionBatchSize = Relay.Builder.DEFAULT_BATCH_SIZE;
        int partitions = 8;
        int keys = 10_000;
        int payloadBytes = 1024;
        int workers = Relay.Builder.DEFAULT_WORKER_THREADS;
        Map<String, String> producer = new LinkedHashMap<>();
        Path out = null;
        int warmup = 50_000;
        int steadySeconds = 15;
        int[] steadyRates = {};
        List<ProbeIntervals> probeIntervals =
                List.of(new ProbeIntervals((int) Relay.Builder.DEFAULT_PROBE_INTERVAL.toMillis(), 0));
        boolean compareListen = false;
        boolean compareDebezium = false;
        boolean statements = false;
        boolean relayProcess = false;
        boolean reindexAfterDrain = false;
        int compareSeconds = 15;
        int compareRounds = 2;
        int vacuumAfterRows = Relay.Builder.DEFAULT_VACUUM_AFTER_ROWS;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--skip-million")) {
                skipMillion = true;
                continue;
            }
            if (a.equals("--compare-listen")) {
                compareListen = true;
                continue;
            }
            if (a.equals("--compare-debezium")) {
                compareDebezium = true;
                continue;
            }
            if (a.equals("--statements")) {
                statements = true;
                continue;
            }
            if (a.equals("--relay-process")) {
                relayProcess = true;
                continue;
            }
            if (a.equals("--reindex-after-drain")) {
                reindexAfterDrain = true;
                continue;
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("option " + a + " needs a value");
            }
            String v = args[++i];
            switch (a) {
                case "--messages" -> messages = positive(a, v);
                case "--batch-sizes" -> batchSizes = positives(a, v);
                case "--latency-samples" -> latencySamples = positive(a, v);
                case "--million-batch-size" -> millionBatchSize = positive(a, v);
                case "--partitions" -> partitions = positive(a, v);
                case "--keys" -> keys = positive(a, v);
                case "--payload-bytes" -> payloadBytes = positive(a, v);
                case "--workers" -> workers = positive(a, v);
                case "--out" -> out = Path.of(v);
                case "--warmup" -> warmup = Integer.parseInt(v);
                case "--compare-seconds" -> compareSeconds = positive(a, v);
                case "--compare-rounds" -> compareRounds = positive(a, v);
                case "--vacuum-after-rows" -> vacuumAfterRows = Integer.parseInt(v);
                case "--steady-seconds" -> steadySeconds = Integer.parseInt(v);
                case "--steady-rates" ->
                    steadyRates = Arrays.stream(v.split(","))
                            .mapToInt(x -> x.trim().equals("0") ? 0 : positive(a, x.trim()))
                            .toArray();
                case "--probe-intervals" ->
                    probeIntervals = Arrays.stream(v.split(","))
                            .map(x -> ProbeIntervals.parse(a, x.trim()))
                            .toList();
                case "--producer" -> {
                    for (String kv : v.split(",")) {
                        String[] p = kv.split("=", 2);
                        if (p.length != 2) {
                            throw new IllegalArgumentException(
                                    "--producer takes key=value pairs separated by commas, got '" + kv + "'");
                        }
                        producer.put(p[0].trim(), p[1].trim());
                    }
                }
                default ->
                    throw new IllegalArgumentException(
                            "unknown option " + a + "; see the class javadoc or benchmarks/RELAY.md");
            }
        }
        return new RelayOptions(
                messages,
                batchSizes,
                latencySamples,
                skipMillion,
                millionBatchSize,
                partitions,
                keys,
                payloadBytes,
                workers,
                Map.copyOf(producer),
                out,
                warmup,
                steadySeconds,
                steadyRates,
                probeIntervals,
                compareListen,
                compareDebezium,
                compareSeconds,
                compareRounds,
                vacuumAfterRows,
                statements,
                relayProcess,
                reindexAfterDrain);
    }

    /** @return the comma-separated positive integers of {@code v} */
    private static int[] positives(String name, String v) {
        return Arrays.stream(v.split(","))
                .mapToInt(x -> positive(name, x.trim()))
                .toArray();
    }

    /** @return the value given after {@code option} on the command line, which must be there */
    static String required(String option, String value) {
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return value;
    }

    /** @return the positive integer given after {@code option} on the command line */
    static int positiveValue(String option, String value) {
        return positive(option, required(option, value));
    }

    static int positive(String name, String v) {
        try {
            int n = Integer.parseInt(v);
            if (n > 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // fall through to the message below
        }
        throw new IllegalArgumentException(name + " must be a positive integer, got '" + v + "'");
    }
}
