package dev.outbox.http.server.gate;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;
import org.springframework.core.io.Resource;
import org.springframework.http.HttpMethod;
import org.springframework.web.servlet.function.HandlerFunction;
import org.springframework.web.servlet.function.RequestPredicate;
import org.springframework.web.servlet.function.RequestPredicates;
import org.springframework.web.servlet.function.RouterFunction;
import org.springframework.web.servlet.function.RouterFunctions;
import org.springframework.web.servlet.function.ServerRequest;

/**
 * Reads the routes of a Spring MVC {@link RouterFunction} into endpoints, walking it with {@link
 * RouterFunctions.Visitor} and each route's predicate with {@link RequestPredicates.Visitor}.
 *
 * <p>A predicate is read into the methods and paths it may match, erring wide: a header, parameter,
 * content-type, accept, extension or version condition only narrows a route and is passed over; a
 * route without a method condition takes every method ({@code *}), one without a path condition
 * every path ({@code /**} under its nesting); a negated condition is taken to match every method
 * and path, but the complement of a negated method condition. A predicate the visitor cannot take
 * apart (a lambda, a class of the application's own) that leaves the method or the path open, and a
 * router function of the application's own, make an endpoint marked {@link Endpoint#unreadable()},
 * which the gate never counts covered. Static resources are served for GET and HEAD only and are
 * not listed.
 */
final class RouterFunctionEndpoints implements RouterFunctions.Visitor {
    private static final Set<String> ALL_METHODS =
            Set.of("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE");

    /**
     * What a predicate may match: methods ({@code null} for every one) and a path pattern ({@code
     * null} for every path), and whether a predicate the visitor cannot take apart left the method
     * or the path open.
     */
    private record Match(Set<String> methods, String path, boolean methodUnread, boolean pathUnread) {
        static final Match ANY = new Match(null, null, false, false);
        static final Match UNREAD = new Match(null, null, true, true);

        /**
         * @param nesting whether {@code other} is matched against the rest of the path that this one
         *     leaves (the conditions of a nesting predicate), else against the same path
         * @return the conjunction, or null when no method satisfies both
         */
        Match and(Match other, boolean nesting) {
            Set<String> m = intersect(methods, other.methods);
            if (m != null && m.isEmpty()) {
                return null;
            }
            String p;
            if (path == null) {
                p = other.path;
            } else if (other.path == null) {
                p = path;
            } else {
                // on the same path both must match: either one alone matches more, and stands for both
                p = nesting ? join(path, other.path) : path;
            }
            return new Match(
                    m,
                    p,
                    (methodUnread || other.methodUnread) && m == null,
                    (pathUnread || other.pathUnread) && p == null);
        }

        Match negate() {
            if (methodUnread || pathUnread) {
                return UNREAD;
            }
            if (methods != null && path == null) {
                Set<String> rest = new TreeSet<>(ALL_METHODS);
                rest.removeAll(methods);
                return rest.isEmpty() ? null : new Match(rest, null, false, false);
            }
            return ANY;
        }
    }

    private static Set<String> intersect(Set<String> a, Set<String> b) {
        if (a == null) {
            return b;
        }
        if (b == null) {
            return a;
        }
        Set<String> both = new TreeSet<>(a);
        both.retainAll(b);
        return both;
    }

    /** The conditions of one predicate, built from the visitor's notifications. */
    private static final class PredicateReader implements RequestPredicates.Visitor {
        private enum Kind {
            ROOT,
            AND,
            OR,
            NEGATE
        }

        private record Frame(Kind kind, List<List<Match>> operands) {}

        private final boolean nesting;
        private final Deque<Frame> frames = new ArrayDeque<>();

        PredicateReader(boolean nesting) {
            this.nesting = nesting;
            frames.push(new Frame(Kind.ROOT, new ArrayList<>()));
        }

        static List<Match> read(RequestPredicate predicate, boolean nesting) {
            PredicateReader reader = new PredicateReader(nesting);
            predicate.accept(reader);
            List<List<Match>> root = reader.frames.getLast().operands();
            return root.size() == 1 ? root.get(0) : List.of(Match.UNREAD);
        }

        private void leaf(Match m) {
            frames.peek().operands().add(List.of(m));
        }

        private void start(Kind kind) {
            frames.push(new Frame(kind, new ArrayList<>()));
        }

        private void end() {
            Frame f = frames.pop();
            List<Match> result = new ArrayList<>();
            switch (f.kind()) {
                case AND -> {
                    result.add(Match.ANY);
                    for (List<Match> operand : f.operands()) {
                        List<Match> next = new ArrayList<>();
                        for (Match left : result) {
                            for (Match right : operand) {
                                Match both = left.and(right, nesting);
                                if (both != null) {
                                    next.add(both);
                                }
                            }
                        }
                        result = next;
                    }
                }
                case OR -> f.operands().forEach(result::addAll);
                case NEGATE -> {
                    List<Match> inner = new ArrayList<>();
                    f.operands().forEach(inner::addAll);
                    if (inner.size() == 1) {
                        Match negated = inner.get(0).negate();
                        if (negated != null) {
                            result.add(negated);
                        }
                    } else {
                        result.add(
                                inner.stream().anyMatch(m -> m.methodUnread() || m.pathUnread())
                                        ? Match.UNREAD
                                        : Match.ANY);
                    }
                }
                case ROOT -> throw new IllegalStateException("unbalanced predicate notifications");
            }
            frames.peek().operands().add(result);
        }

        @Override
        public void method(Set<HttpMethod> methods) {
            Set<String> names = new TreeSet<>();
            methods.forEach(m -> names.add(m.name()));
            leaf(new Match(names, null, false, false));
        }

        @Override
        public void path(String pattern) {
            leaf(new Match(null, pattern, false, false));
        }

        /** A path extension condition, deprecated in Spring but still notified, only narrows a route. */
        @Override
        @SuppressWarnings("removal")
        public void pathExtension(String extension) {
            leaf(Match.ANY);
        }

        @Override
        public void header(String name, String value) {
            leaf(Match.ANY);
        }

        @Override
        public void param(String name, String value) {
            leaf(Match.ANY);
        }

        @Override
        public void version(String version) {
            leaf(Match.ANY);
        }

        @Override
        public void startAnd() {
            start(Kind.AND);
        }

        @Override
        public void and() {}

        @Override
        public void endAnd() {
            end();
        }

        @Override
        public void startOr() {
            start(Kind.OR);
        }

        @Override
        public void or() {}

        @Override
        public void endOr() {
            end();
        }

        @Override
        public void startNegate() {
            start(Kind.NEGATE);
        }

        @Override
        public void endNegate() {
            end();
        }

        @Override
        public void unknown(RequestPredicate predicate) {
            leaf(Match.UNREAD);
        }
    }

    private final String prefix;
    private final List<Endpoint> out = new ArrayList<>();
    /** What the enclosing nesting predicates match, the innermost on top, each combined with those around it. */
    private final Deque<List<Match>> nests = new ArrayDeque<>();

    /** The texts of the enclosing nesting predicates, for the report. */
    private final Deque<String> nestTexts = new ArrayDeque<>();

    private RouterFunctionEndpoints(String prefix) {
        this.prefix = prefix;
        nests.push(List.of(new Match(null, "", false, false)));
    }

    static List<Endpoint> of(RouterFunction<?> routes, String prefix) {
        RouterFunctionEndpoints visitor = new RouterFunctionEndpoints(prefix);
        routes.accept(visitor);
        return visitor.out;
    }

    @Override
    public void startNested(RequestPredicate predicate) {
        List<Match> combined = new ArrayList<>();
        for (Match outer : nests.peek()) {
            for (Match inner : PredicateReader.read(predicate, true)) {
                Match both = nest(outer, inner);
                if (both != null) {
                    combined.add(both);
                }
            }
        }
        nests.push(combined);
        nestTexts.addLast(String.valueOf(predicate));
    }

    @Override
    public void endNested(RequestPredicate predicate) {
        nests.pop();
        nestTexts.removeLast();
    }

    @Override
    public void route(RequestPredicate predicate, HandlerFunction<?> handlerFunction) {
        add(
                PredicateReader.read(predicate, false),
                describe(String.valueOf(predicate)) + ", handler " + className(handlerFunction),
                null);
    }

    @Override
    public void resources(Function<ServerRequest, Optional<Resource>> lookupFunction) {
        // static resources answer GET and HEAD (OPTIONS with the methods allowed); nothing to protect
    }

    @Override
    public void attributes(Map<String, Object> attributes) {}

    @Override
    public void unknown(RouterFunction<?> routerFunction) {
        add(
                List.of(Match.UNREAD),
                describe("router function " + className(routerFunction)),
                "a router function of the application's own, whose routes the gate cannot list");
    }

    /**
     * @param outer what the enclosing nestings match, its path the part of the path they consume
     * @param inner one alternative of a nesting predicate
     * @return what both match, its path the part consumed by both, or null when no method satisfies both
     */
    private static Match nest(Match outer, Match inner) {
        Set<String> m = intersect(outer.methods(), inner.methods());
        if (m != null && m.isEmpty()) {
            return null;
        }
        return new Match(
                m,
                join(outer.path(), inner.path() == null ? "" : inner.path()),
                (outer.methodUnread() || inner.methodUnread()) && m == null,
                // an open path only matters to a route that leaves the path open too
                outer.pathUnread() || inner.pathUnread());
    }

    private void add(List<Match> route, String handler, String why) {
        Set<Endpoint> found = new LinkedHashSet<>();
        for (Match outer : nests.peek()) {
            for (Match inner : route) {
                Set<String> methods = intersect(outer.methods(), inner.methods());
                if (methods != null && methods.isEmpty()) {
                    continue;
                }
                String path = prefix + normalize(join(outer.path(), inner.path() == null ? "/**" : inner.path()));
                boolean methodUnread = (outer.methodUnread() || inner.methodUnread()) && methods == null;
                boolean pathUnread = (outer.pathUnread() || inner.pathUnread()) && inner.path() == null;
                String unreadable = why;
                if (unreadable == null && (methodUnread || pathUnread)) {
                    unreadable = "the gate cannot read which "
                            + (methodUnread && pathUnread ? "method and path" : methodUnread ? "method" : "path")
                            + " its predicate takes";
                }
                if (methods == null) {
                    found.add(new Endpoint("*", path, handler, null, unreadable));
                } else {
                    for (String method : methods) {
                        found.add(new Endpoint(method, path, handler, null, unreadable));
                    }
                }
            }
        }
        out.addAll(found);
    }

    /** @return the route as the report names it: its enclosing nesting predicates, then its own */
    private String describe(String route) {
        StringBuilder b = new StringBuilder("functional route ");
        for (String nest : nestTexts) {
            b.append(nest).append(" => ");
        }
        return b.append(route).toString();
    }

    /** @return the class of a handler or router, a lambda's named by the class that declares it */
    private static String className(Object o) {
        String name = o.getClass().getName();
        int lambda = name.indexOf("$$Lambda");
        return lambda < 0 ? name : name.substring(0, lambda) + " (lambda)";
    }

    private static String join(String left, String right) {
        if (left.isEmpty()) {
            return right;
        }
        if (right.isEmpty()) {
            return left;
        }
        String l = left.endsWith("/") ? left.substring(0, left.length() - 1) : left;
        return l + (right.startsWith("/") ? right : "/" + right);
    }

    private static String normalize(String path) {
        if (path.isEmpty()) {
            return "/";
        }
        return path.startsWith("/") ? path : "/" + path;
    }
}
