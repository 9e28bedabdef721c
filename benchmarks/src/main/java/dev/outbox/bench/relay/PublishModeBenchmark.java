package dev.outbox.bench.relay;

import dev.outbox.relay.PublishMode;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The throughput cost of the relay's transactional publish mode: the backlog drain of {@link
 * RelayBenchmark} (same rows, topic, relay settings and checks) with {@link PublishMode#IDEMPOTENT}
 * and {@link PublishMode#TRANSACTIONAL} in alternating rounds (ABBA order, so a drift of the
 * machine's load over the run weighs on both alike), after an unreported warm-up of each.
 *
 * <p>Options: {@code --rounds N} (pairs of drains, default 3), {@code --batch-size N} (default 500),
 * {@code --out FILE}, and RelayBenchmark's {@code --messages}, {@code --partitions}, {@code --keys},
 * {@code --payload-bytes}, {@code --workers}, {@code --producer}, {@code --warmup}. See {@code
 * benchmarks/RELAY.md}, "Publish modes".
 */
public final class PublishModeBenchmark {
    private PublishModeBenchmark() {}

    public static void main(String[] args) throws Exception {
        int rounds = 3;
        int batchSize = 500;
        Path out = null;
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--rounds" -> rounds = Integer.parseInt(args[++i]);
                case "--batch-size" -> batchSize = Integer.parseInt(args[++i]);
                case "--out" -> out = Path.of(args[++i]);
                default -> rest.add(args[i]);
            }
        }
        RelayOptions options = RelayOptions.parse(rest.toArray(String[]::new));
        Report.quietLogs();
        TestKafka kafka = RealServices.kafka();
        try (TestDatabase db = TestDatabase.create()) {
            RelayBenchmark bench = new RelayBenchmark(options, kafka, db);
            List<String> report = new ArrayList<>();
            report.add("# relay publish modes, " + Instant.now() + ", " + options.messages() + " messages of "
                    + options.payloadBytes() + " B, " + options.keys() + " keys, " + options.partitions()
                    + " partitions, batch size "
                    + batchSize + ", " + options.workers() + " worker threads");
            if (options.warmup() > 0) {
                for (PublishMode mode : PublishMode.values()) {
                    bench.drain().publishMode = mode;
                    bench.drain().drainWithRelay(options.warmup(), batchSize);
                }
                report.add("after an unreported warm-up of " + options.warmup() + " messages in each mode");
            }
            report.add(String.format(
                    Locale.ROOT,
                    "%-5s %-13s %10s %7s  %-36s %s",
                    "round",
                    "mode",
                    "msg/s",
                    "seconds",
                    "CPU per message",
                    "load avg before / after"));
            double[] ratios = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                PublishMode[] order = r % 2 == 0
                        ? new PublishMode[] {PublishMode.IDEMPOTENT, PublishMode.TRANSACTIONAL}
                        : new PublishMode[] {PublishMode.TRANSACTIONAL, PublishMode.IDEMPOTENT};
                double idempotent = 0;
                double transactional = 0;
                for (PublishMode mode : order) {
                    bench.drain().publishMode = mode;
                    DrainScenario.Drain d = bench.drain().drainWithRelay(options.messages(), batchSize);
                    if (mode == PublishMode.IDEMPOTENT) {
                        idempotent = d.rate();
                    } else {
                        transactional = d.rate();
                    }
                    String row = String.format(
                            Locale.ROOT,
                            "%-5d %-13s %10.0f %7.1f  %-36s %s / %s",
                            r + 1,
                            mode,
                            d.rate(),
                            d.nanos() / 1e9,
                            d.cpu().perMessage(d.messages()),
                            d.loadBefore(),
                            d.loadAfter());
                    report.add(row);
                    System.out.println(row);
                }
                ratios[r] = transactional / idempotent;
            }
            double[] sorted = ratios.clone();
            Arrays.sort(sorted);
            report.add(String.format(
                    Locale.ROOT,
                    "transactional / idempotent per round: %s; median %.2f",
                    Arrays.toString(Arrays.stream(ratios)
                            .map(x -> Math.round(x * 100) / 100.0)
                            .toArray()),
                    sorted[sorted.length / 2]));
            report.add("load average at the end: " + Report.loadAverage());
            report.forEach(System.out::println);
            if (out != null) {
                Files.write(out, report);
            }
        }
        System.exit(0);
    }
}
