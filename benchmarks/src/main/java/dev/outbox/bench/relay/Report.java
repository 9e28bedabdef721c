package dev.outbox.bench.relay;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The relay benchmarks' output: summary lines go to stdout and are kept for {@code --out FILE};
 * progress and diagnostics go to stderr. Also the small figures every scenario prints with its
 * rows: load average and percentiles.
 */
final class Report {
    private final List<String> lines = new ArrayList<>();

    /** Prints one summary line and keeps it for {@link #write}. */
    void line(String s) {
        lines.add(s);
        System.out.println(s);
        System.out.flush();
    }

    /** Writes the summary lines printed so far to {@code out}, when it is not null. */
    void write(Path out) throws IOException {
        if (out != null) {
            Files.write(out, lines);
        }
    }

    /** Prints a progress or diagnostic line to stderr; it is not part of the summary. */
    static void progress(String format, Object... args) {
        System.err.printf(Locale.ROOT, "[relay-bench] " + format + "%n", args);
    }

    /** @return the 1, 5 and 15 minute load averages of the host */
    static String loadAverage() {
        try {
            String[] parts = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return parts[0] + " " + parts[1] + " " + parts[2];
        } catch (Exception e) {
            return String.format(
                    Locale.ROOT,
                    "%.2f",
                    ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        }
    }

    /** @return the {@code p}-th percentile of {@code sorted} (nearest rank) */
    static double percentile(double[] sorted, double p) {
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    /**
     * @param sorted latencies in milliseconds, sorted, at least one
     * @param sent how many samples were sent
     * @return {@code "p50 / p99 / max<unit> (n of sent)"}
     */
    static String latencies(double[] sorted, int sent, String unit) {
        return String.format(
                Locale.ROOT,
                "%.1f / %.1f / %.1f%s (%d of %d)",
                percentile(sorted, 50),
                percentile(sorted, 99),
                sorted[sorted.length - 1],
                unit,
                sorted.length,
                sent);
    }

    static void quietLogs() {
        if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
            context.getLogger(Logger.ROOT_LOGGER_NAME).setLevel(Level.WARN);
            context.getLogger("org.jooq").setLevel(Level.ERROR);
        }
    }

    static void silenceLogs() {
        if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
            context.getLogger(Logger.ROOT_LOGGER_NAME).setLevel(Level.OFF);
        }
    }

    /** A benchmark's body, which may throw anything. */
    @FunctionalInterface
    interface Body {
        void run(String[] args) throws Exception;
    }

    /**
     * Runs a benchmark's main body, then exits the JVM: 1 after a failure (its stack trace printed), else 0
     * with the logs silenced, since the shared broker's threads would keep the JVM alive and it stops in a
     * shutdown hook whose chatter is not part of the report.
     */
    static void runAndExit(Body body, String[] args) {
        try {
            body.run(args);
        } catch (Throwable t) {
            t.printStackTrace();
            System.exit(1);
        }
        silenceLogs();
        System.exit(0);
    }
}
