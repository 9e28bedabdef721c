package dev.outbox.bench.relay;

import dev.outbox.relay.Relay;
import java.sql.SQLException;
import java.util.Locale;
import java.util.Map;

/**
 * The idle cost scenario: what a started relay with nothing to publish costs per second, as a share
 * of one core, in its threads of this JVM (shard loops, probe, lease, sampler, the producer's I/O
 * thread) and in the PostgreSQL backends of its own pool (application name {@value #RELAY_APP}).
 */
final class IdleCost {
    /** The application name of the relay pool whose backends are counted. */
    static final String RELAY_APP = "bench-steady-relay";

    private final BenchContext ctx;

    IdleCost(BenchContext ctx) {
        this.ctx = ctx;
    }

    /** Waits 5 s after the start, then measures {@code max(10, steady-seconds)} s, and reports the line. */
    void measure(Relay relay) throws Exception {
        Thread.sleep(5_000);
        int idleSeconds = Math.max(10, ctx.options.steadySeconds());
        double[] before = relayCpu();
        Map<String, Double> threadsBefore = Cpu.threadCpuByName();
        Thread.sleep(idleSeconds * 1000L);
        double[] after = relayCpu();
        Report.progress(
                "idle relay, %% of one core by thread: %s",
                Cpu.busiest(threadsBefore, Cpu.threadCpuByName(), idleSeconds));
        ctx.report.line(String.format(
                Locale.ROOT,
                "idle, %d s, %d shards: relay threads %.2f %% of one core, its PostgreSQL backends %.2f %%"
                        + " of one core",
                idleSeconds,
                relay.ownedShards().size(),
                (after[0] - before[0]) * 100 / idleSeconds,
                (after[1] - before[1]) * 100 / idleSeconds));
    }

    /** @return {CPU seconds of the relay's threads in this JVM, CPU seconds of the relay pool's PostgreSQL backends} */
    double[] relayCpu() throws SQLException {
        Map<String, Double> threads = Cpu.threadCpu();
        double jvm = threads.getOrDefault("relay workers", 0.0)
                + threads.getOrDefault("relay other", 0.0)
                + threads.getOrDefault("producer I/O", 0.0);
        return new double[] {jvm, ctx.backendCpuSeconds(RELAY_APP)};
    }
}
