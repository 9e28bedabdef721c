package dev.outbox.http.server.gate;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * What the start-up gate found.
 *
 * @param covered mutating endpoints the {@code Idempotency-Key} filter covers
 * @param exempted mutating endpoints exempted with a reason ({@link Endpoint#exemption()})
 * @param uncovered mutating endpoints neither covered nor exempted
 * @param unreached those of {@code uncovered} that a filter's own paths and methods cover, but that
 *     no mapping of that filter in the container reaches: the filter never sees their requests
 * @param unusedExemptions configured exemptions ({@code METHOD path}) that matched no endpoint: a
 *     typo or a route that is gone
 */
public record GateReport(
        List<Endpoint> covered,
        List<Endpoint> exempted,
        List<Endpoint> uncovered,
        List<Endpoint> unreached,
        List<String> unusedExemptions) {

    /** In the report's order: by path, then method, then handler, whatever order they were found in. */
    private static final Comparator<Endpoint> ORDER =
            Comparator.comparing(Endpoint::path).thenComparing(Endpoint::method).thenComparing(Endpoint::handler);

    /** Copies the lists, the endpoints sorted ({@link #ORDER}) so that the same application gives the same report. */
    public GateReport {
        covered = sorted(covered);
        exempted = sorted(exempted);
        uncovered = sorted(uncovered);
        unreached = sorted(unreached);
        unusedExemptions = List.copyOf(unusedExemptions);
    }

    private static List<Endpoint> sorted(List<Endpoint> endpoints) {
        return endpoints.stream().sorted(ORDER).toList();
    }

    /** @return whether every mutating endpoint is covered or exempted */
    public boolean passed() {
        return uncovered.isEmpty();
    }

    /**
     * @return the report as a gate built in code logs it: counts, each exemption with its reason, each
     *     uncovered endpoint, and how to cover or exempt it with the builders' methods ({@link
     *     Advice#inCode()})
     */
    public String describe() {
        return describe(Advice.inCode());
    }

    /**
     * @param advice how to word the fixes: in the terms the application is configured in
     * @return the report: counts, each exemption with its reason, each uncovered endpoint with why it
     *     is uncovered, and how to cover or exempt it
     */
    public String describe(Advice advice) {
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
        List<Endpoint> notInPaths = new ArrayList<>();
        boolean unreadable = false;
        for (Endpoint e : uncovered) {
            b.append("\n  UNCOVERED ")
                    .append(e.route())
                    .append("  (")
                    .append(e.handler())
                    .append(")");
            if (e.unreadable() != null) {
                unreadable = true;
                b.append(": unreadable, ").append(e.unreadable());
            } else if (unreached.contains(e)) {
                b.append(": not reached, in the filter's paths but outside every mapping of the filter");
            } else {
                notInPaths.add(e);
            }
        }
        if (uncovered.isEmpty()) {
            return b.toString();
        }
        if (!notInPaths.isEmpty()) {
            b.append("\nCover each uncovered endpoint: ").append(advice.cover()).append('.');
        }
        if (!unreached.isEmpty()) {
            b.append("\nAn endpoint marked 'not reached' is in a filter's paths, but the filter never sees its")
                    .append(" requests, as no mapping of the filter in the container reaches its path: ")
                    .append(advice.reach())
                    .append('.');
        }
        if (unreadable) {
            b.append("\nAn endpoint marked 'unreadable' is a functional route whose method or path the gate")
                    .append(" cannot read from its predicate, so it is never counted covered: give the route its")
                    .append(" method and path with RequestPredicates (route().POST(\"/payments\", handler), nested")
                    .append(" under path(\"/api\")); conditions of your own may stand beside them.");
        }
        b.append("\nOr exempt an endpoint, with a reason: @NotIdempotent(reason = \"...\") on the servlet class,")
                .append(" its do<Method>, the controller or its handler method, or ")
                .append(advice.exempt(uncovered.get(0).route()))
                .append(". ")
                .append(advice.warnOnly());
        return b.toString();
    }

    /**
     * How a report words the fixes of its uncovered endpoints, in the terms the application is
     * configured in: {@link #inCode()} for a filter and gate built in code, or a framework
     * integration's own (the Spring Boot starter names its properties).
     */
    public interface Advice {
        /**
         * @return how to put an endpoint under the filter's paths and methods, a clause that follows
         *     "Cover each uncovered endpoint: "
         */
        String cover();

        /**
         * @return how to have a filter's mapping in the container reach a path its paths already
         *     hold, a clause
         */
        String reach();

        /**
         * @param route an uncovered endpoint's {@code METHOD path}, as an example
         * @return how to exempt it in configuration, with a reason, a clause
         */
        String exempt(String route);

        /** @return how to log the report instead of failing the start, or turn the gate off: sentences */
        String warnOnly();

        /** @return the wording for a filter and gate built in code, with their builders' methods */
        static Advice inCode() {
            return InCode.INSTANCE;
        }
    }

    private enum InCode implements Advice {
        INSTANCE;

        @Override
        public String cover() {
            return "add its path to IdempotencyFilter.builder(store).paths(...) (an exact path, or a prefix such"
                    + " as /orders/*) and its method to methods(...), with the filter mapped ahead of the handler";
        }

        @Override
        public String reach() {
            return "map the filter in the container to the path as well (a URL pattern of its registration"
                    + " that reaches it, or the servlet's name)";
        }

        @Override
        public String exempt(String route) {
            return "IdempotencyGate.builder().exempt(\"" + route + "\", \"<reason>\")";
        }

        @Override
        public String warnOnly() {
            return "While rolling out, warnOnly(true) logs this instead of failing the start.";
        }
    }
}
