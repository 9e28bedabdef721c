package dev.outbox.torture;

import java.io.PrintStream;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The checker's findings: the faults injected and each invariant with its count.
 *
 * @param committed messages committed
 * @param aborted messages rolled back
 * @param records records read from the message topic
 * @param httpOperations HTTP operations sent
 * @param faults faults injected, by kind
 * @param lines the invariants, in print order
 */
public record Verdict(
        long committed, long aborted, long records, long httpOperations, Map<String, Long> faults, List<Line> lines) {

    public Verdict {
        lines = List.copyOf(lines);
    }

    /**
     * One invariant.
     *
     * @param name what is counted
     * @param count how many times it was seen
     * @param counted whether a count above 0 fails the run; {@code false} for figures that are
     *     allowed by design and shown for information (the relay publishes at least once)
     * @param examples a few of the cases counted, to start the diagnosis from
     */
    public record Line(String name, long count, boolean counted, List<String> examples) {
        public Line {
            examples = List.copyOf(examples);
        }

        static Line counted(String name, long count) {
            return new Line(name, count, true, List.of());
        }

        static Line counted(String name, long count, List<String> examples) {
            return new Line(name, count, true, examples);
        }

        static Line info(String name, long count) {
            return new Line(name, count, false, List.of());
        }

        /** @return whether this line fails the run */
        public boolean failed() {
            return counted && count > 0;
        }
    }

    /** @return whether every counted invariant is 0 */
    public boolean passed() {
        return lines.stream().noneMatch(Line::failed);
    }

    /** @return the count of the invariant with that name */
    public long count(String name) {
        return lines.stream()
                .filter(l -> l.name().equals(name))
                .findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no invariant named '" + name + "'"))
                .count();
    }

    /** @return the names of the invariants that failed */
    public List<String> failures() {
        return lines.stream().filter(Line::failed).map(Line::name).toList();
    }

    /** @return the last line: {@code torture: PASS} or {@code torture: FAIL}, then the figures */
    public String summaryLine() {
        String failed = lines.stream()
                .filter(Line::failed)
                .map(l -> l.name() + "=" + l.count())
                .collect(Collectors.joining(", "));
        long faultCount = faults.values().stream().mapToLong(Long::longValue).sum();
        return "torture: " + (passed() ? "PASS" : "FAIL") + " committed=" + committed + " rolled-back=" + aborted
                + " records=" + records + " http=" + httpOperations + " faults=" + faultCount
                + (failed.isEmpty() ? "" : " failed: " + failed);
    }

    /** Prints the fault table, the invariant table and the summary line. */
    public void print(PrintStream out) {
        out.println();
        out.println("faults injected");
        faults.forEach((kind, n) -> out.printf("  %-62s %9d%n", kind, n));
        out.println();
        out.println("invariants");
        for (Line l : lines) {
            out.printf(
                    "  %-62s %9d  %s%n",
                    l.name(), l.count(), l.counted() ? (l.count() == 0 ? "ok" : "FAIL") : "(information)");
            l.examples().forEach(e -> out.println("      e.g. " + e));
        }
        out.println();
        out.println(summaryLine());
    }
}
