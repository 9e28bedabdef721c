package dev.outbox.bench.relay;

import com.sun.management.OperatingSystemMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.DoubleSupplier;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import javax.management.ObjectName;

/**
 * CPU seconds used so far by this JVM (relay, producer and, when in-JVM, the broker) and by all postgres
 * processes; and the finer accounts: per thread group of this JVM, per process, and the producers' own
 * batch figures.
 */
record Cpu(double jvm, double postgres) {
    static Cpu now() {
        return now(Cpu::postgresCpuSeconds);
    }

    /** @param postgres CPU seconds of the PostgreSQL processes to count */
    static Cpu now(DoubleSupplier postgres) {
        double jvm = ((OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime() / 1e9;
        return new Cpu(jvm, postgres.getAsDouble());
    }

    Cpu minus(Cpu earlier) {
        return new Cpu(jvm - earlier.jvm, postgres - earlier.postgres);
    }

    String perMessage(long messages) {
        return String.format(
                Locale.ROOT, "JVM %.1f us + PostgreSQL %.1f us", jvm * 1e6 / messages, postgres * 1e6 / messages);
    }

    /** CPU seconds per thread group of this JVM, from the thread MXBean (threads that ended are not counted). */
    static Map<String, Double> threadCpu() {
        var mx = ManagementFactory.getThreadMXBean();
        Map<String, Double> out = new TreeMap<>();
        for (var info : mx.getThreadInfo(mx.getAllThreadIds())) {
            if (info == null) {
                continue;
            }
            long t = mx.getThreadCpuTime(info.getThreadId());
            if (t > 0) {
                out.merge(threadGroup(info.getThreadName()), t / 1e9, Double::sum);
            }
        }
        return out;
    }

    /** @return CPU seconds per live thread of the relay or a producer, by thread name */
    static Map<String, Double> threadCpuByName() {
        var mx = ManagementFactory.getThreadMXBean();
        Map<String, Double> out = new TreeMap<>();
        for (var info : mx.getThreadInfo(mx.getAllThreadIds())) {
            if (info != null && !threadGroup(info.getThreadName()).equals("other")) {
                out.merge(info.getThreadName(), mx.getThreadCpuTime(info.getThreadId()) / 1e9, Double::sum);
            }
        }
        return out;
    }

    /** @return the ten threads that used the most CPU between the two samples, as % of one core over {@code seconds} */
    static String busiest(Map<String, Double> before, Map<String, Double> after, double seconds) {
        return after.entrySet().stream()
                .map(e -> Map.entry(e.getKey(), e.getValue() - before.getOrDefault(e.getKey(), 0.0)))
                .sorted(Map.Entry.<String, Double>comparingByValue().reversed())
                .limit(10)
                .map(e -> String.format(Locale.ROOT, "%s %.2f", e.getKey(), e.getValue() * 100 / seconds))
                .collect(Collectors.joining(", "));
    }

    static String threadGroup(String name) {
        if (name.startsWith("relay-") && name.contains("-worker-")) {
            return "relay workers";
        }
        if (name.startsWith("relay-")) {
            return "relay other";
        }
        if (name.startsWith("kafka-producer-network-thread")) {
            return "producer I/O";
        }
        if (name.startsWith("data-plane-kafka")
                || name.startsWith("kafka-")
                || name.contains("controller")
                || name.contains("broker")) {
            return "broker";
        }
        if (name.equals("main")) {
            return "main";
        }
        return "other";
    }

    static String threadCpuDelta(
            Map<String, Double> before, Map<String, Double> after, double processSeconds, long messages) {
        StringBuilder sb = new StringBuilder();
        double known = 0;
        for (var e : after.entrySet()) {
            double d = e.getValue() - before.getOrDefault(e.getKey(), 0.0);
            known += d;
            sb.append(String.format(Locale.ROOT, "%s %.1f us, ", e.getKey(), d * 1e6 / messages));
        }
        sb.append(
                String.format(Locale.ROOT, "GC/JIT/ended threads %.1f us", (processSeconds - known) * 1e6 / messages));
        return sb.toString();
    }

    /** @return batch and request sizes of the producers of this JVM whose client id starts with {@code prefix}, from JMX */
    static String producerStats(String prefix) {
        try {
            var server = ManagementFactory.getPlatformMBeanServer();
            StringBuilder sb = new StringBuilder();
            for (var name :
                    server.queryNames(new ObjectName("kafka.producer:type=producer-metrics,client-id=*"), null)) {
                if (!name.getKeyProperty("client-id").startsWith(prefix)) {
                    continue;
                }
                sb.append(String.format(
                        Locale.ROOT,
                        "batch-size-avg %.0f B, records-per-request-avg %.1f, request-latency-avg %.1f ms, "
                                + "bufferpool-wait-ratio %.3f",
                        (Double) server.getAttribute(name, "batch-size-avg"),
                        (Double) server.getAttribute(name, "records-per-request-avg"),
                        (Double) server.getAttribute(name, "request-latency-avg"),
                        (Double) server.getAttribute(name, "bufferpool-wait-ratio")));
            }
            return sb.toString();
        } catch (Exception e) {
            return "producer metrics unavailable: " + e;
        }
    }

    static double postgresCpuSeconds() {
        long ticks = 0;
        try (var dirs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
            for (Path dir : dirs) {
                try {
                    String stat = Files.readString(dir.resolve("stat"));
                    int close = stat.lastIndexOf(')');
                    if (!stat.substring(stat.indexOf('(') + 1, close).startsWith("postgres")) {
                        continue;
                    }
                    String[] f = stat.substring(close + 2).split(" ");
                    ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]);
                } catch (Exception e) {
                    // the process ended while it was read
                }
            }
        } catch (Exception e) {
            return Double.NaN;
        }
        return ticks / 100.0; // USER_HZ
    }

    static double processCpuSeconds(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
        } catch (Exception e) {
            return 0;
        }
    }

    /**
     * CPU seconds of one PostgreSQL server: its postmaster, the children it has reaped (their time is
     * in the postmaster's {@code cutime} and {@code cstime}, so backends that ended count too) and its
     * children alive now. Other servers on the host are not counted.
     *
     * @param postmasterPid the server's postmaster, first line of {@code postmaster.pid}
     */
    static double instanceCpuSeconds(long postmasterPid) {
        long ticks = 0;
        try (var dirs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
            for (Path dir : dirs) {
                try {
                    String stat = Files.readString(dir.resolve("stat"));
                    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    long pid = Long.parseLong(dir.getFileName().toString());
                    if (pid == postmasterPid) {
                        ticks += Long.parseLong(f[11])
                                + Long.parseLong(f[12])
                                + Long.parseLong(f[13])
                                + Long.parseLong(f[14]);
                    } else if (Long.parseLong(f[1]) == postmasterPid) {
                        ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]);
                    }
                } catch (Exception e) {
                    // the process ended while it was read
                }
            }
        } catch (Exception e) {
            return Double.NaN;
        }
        return ticks / 100.0; // USER_HZ
    }

    /** @return CPU nanoseconds by thread id of the live threads of this JVM whose name {@code counted} accepts */
    static Map<Long, Long> threadCpuById(Predicate<String> counted) {
        var mx = ManagementFactory.getThreadMXBean();
        Map<Long, Long> out = new HashMap<>();
        for (var info : mx.getThreadInfo(mx.getAllThreadIds())) {
            if (info != null && counted.test(info.getThreadName())) {
                long t = mx.getThreadCpuTime(info.getThreadId());
                if (t > 0) {
                    out.put(info.getThreadId(), t);
                }
            }
        }
        return out;
    }

    /**
     * @return CPU seconds the threads alive in {@code after} used since {@code before} (a thread started
     *     in between counts from zero; one that ended in between is not counted)
     */
    static double threadCpuSince(Map<Long, Long> before, Map<Long, Long> after) {
        long nanos = 0;
        for (var e : after.entrySet()) {
            nanos += e.getValue() - before.getOrDefault(e.getKey(), 0L);
        }
        return nanos / 1e9;
    }
}
