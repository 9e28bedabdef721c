package dev.outbox.http.server.gate;

import java.util.List;

/**
 * What the start-up gate found.
 *
 * @param covered mutating endpoints the {@code Idempotency-Key} filter covers
 * @param exempted mutating endpoints exempted with a reason ({@link Endpoint#exemption()})
 * @param uncovered mutating endpoints neither covered nor exempted
 * @param unusedExemptions configured exemptions ({@code METHOD path}) that matched no endpoint: a
 *     typo or a route that is gone
 */
public record GateReport(
        List<Endpoint> covered, List<Endpoint> exempted, List<Endpoint> uncovered, List<String> unusedExemptions) {

    /** Copies the lists. */
    public GateReport {
        covered = List.copyOf(covered);
        exempted = List.copyOf(exempted);
        uncovered = List.copyOf(uncovered);
        unusedExemptions = List.copyOf(unusedExemptions);
    }

    /** @return whether every mutating endpoint is covered or exempted */
    public boolean passed() {
        return uncovered.isEmpty();
    }

    /**
     * @return the report as the gate logs it: counts, each exemption with its reason, each uncovered
     *     endpoint with how to cover or exempt it
     */
    public String describe() {
        StringBuilder b = new StringBuilder();
        b.append("Idempotency gate: ")
                .append(covered.size())
                .append(" mutating endpoint(s) covered by IdempotencyFilter, ")
                .append(exempted.size())
                .append(" exempted, ")
                .append(uncovered.size())
                .append(" uncovered.");
        for (Endpoint e : exempted) {
            b.append("\n  exempt    ")
                    .append(e.route())
                    .append("  (")
                    .append(e.handler())
                    .append("): ")
                    .append(e.exemption());
        }
        for (String unused : unusedExemptions) {
            b.append("\n  unused exemption '")
                    .append(unused)
                    .append("': no endpoint has this method and path; remove it or fix it");
        }
        for (Endpoint e : uncovered) {
            b.append("\n  UNCOVERED ")
                    .append(e.route())
                    .append("  (")
                    .append(e.handler())
                    .append(")");
        }
        if (!uncovered.isEmpty()) {
            b.append(
                            "\nCover each uncovered endpoint: add its path to IdempotencyFilter.builder(store).paths(...) (an exact")
                    .append(
                            " path, or a prefix such as /orders/*) and its method to methods(...), with the filter mapped ahead of")
                    .append(
                            " the handler. Or exempt it, with a reason: @NotIdempotent(reason = \"...\") on the servlet class, its")
                    .append(" do<Method> or the controller method, or IdempotencyGate.builder().exempt(\"")
                    .append(uncovered.get(0).route())
                    .append("\", \"<reason>\"). While rolling out, warnOnly(true) logs this")
                    .append(" instead of failing the start.");
        }
        return b.toString();
    }
}
