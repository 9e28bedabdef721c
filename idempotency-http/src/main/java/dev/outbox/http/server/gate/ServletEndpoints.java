package dev.outbox.http.server.gate;

import dev.outbox.http.server.NotIdempotent;
import jakarta.servlet.ServletContext;
import jakarta.servlet.ServletRegistration;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Finds the mutating endpoints of a servlet context: which servlets override which do-methods. */
final class ServletEndpoints {
    /** The do-methods looked for, by HTTP method. {@code doPatch} exists from Servlet 6.1 on. */
    private static final Map<String, String> DO_METHODS =
            Map.of("POST", "doPost", "PATCH", "doPatch", "PUT", "doPut", "DELETE", "doDelete");

    record Mapped(Endpoint endpoint, String servletName) {}

    private ServletEndpoints() {}

    static List<Mapped> of(ServletContext context) {
        List<Mapped> out = new ArrayList<>();
        ClassLoader loader = context.getClassLoader();
        Map<String, ? extends ServletRegistration> registrations = new TreeMap<>(context.getServletRegistrations());
        for (var entry : registrations.entrySet()) {
            String name = entry.getKey();
            ServletRegistration reg = entry.getValue();
            Class<?> type = load(reg.getClassName(), loader);
            String handler = "servlet '" + name + "', " + reg.getClassName();
            Map<String, Method> handled = new TreeMap<>();
            boolean everyMethod = type == null || !HttpServlet.class.isAssignableFrom(type) || overridesService(type);
            if (!everyMethod) {
                DO_METHODS.forEach((http, doName) -> {
                    Method m = declared(type, doName);
                    if (m != null) {
                        handled.put(http, m);
                    }
                });
            }
            NotIdempotent onClass = type == null ? null : type.getAnnotation(NotIdempotent.class);
            for (String mapping : reg.getMappings()) {
                String path = path(mapping);
                if (everyMethod) {
                    out.add(new Mapped(new Endpoint("*", path, handler, reason(onClass)), name));
                }
                handled.forEach((http, m) -> {
                    NotIdempotent onMethod = m.getAnnotation(NotIdempotent.class);
                    out.add(new Mapped(
                            new Endpoint(http, path, handler, reason(onMethod != null ? onMethod : onClass)), name));
                });
            }
        }
        return out;
    }

    private static String reason(NotIdempotent a) {
        if (a == null) {
            return null;
        }
        if (a.reason().isBlank()) {
            throw new IllegalArgumentException(
                    "@NotIdempotent needs a reason: say why a retried request cannot do harm there");
        }
        return a.reason();
    }

    /** The default servlet ({@code /}) takes every path not mapped elsewhere: only {@code /*} covers it. */
    private static String path(String mapping) {
        if (mapping.isEmpty()) {
            return "/";
        }
        return mapping.equals("/") ? "/*" : mapping;
    }

    /** Whether a filter's URL pattern (servlet syntax) reaches every request of a servlet mapping. */
    static boolean patternCovers(String filterPattern, String servletPath) {
        if (filterPattern.equals("/*") || filterPattern.equals(servletPath)) {
            return true;
        }
        if (filterPattern.endsWith("/*")) {
            String prefix = filterPattern.substring(0, filterPattern.length() - 2);
            return servletPath.equals(prefix) || servletPath.startsWith(prefix + "/");
        }
        return false;
    }

    private static Class<?> load(String name, ClassLoader loader) {
        if (name == null) {
            return null;
        }
        try {
            return Class.forName(name, false, loader != null ? loader : ServletEndpoints.class.getClassLoader());
        } catch (ClassNotFoundException | LinkageError e) {
            return null;
        }
    }

    private static boolean overridesService(Class<?> type) {
        for (Class<?> c = type; c != null && c != HttpServlet.class; c = c.getSuperclass()) {
            for (Method m : c.getDeclaredMethods()) {
                if (m.getName().equals("service")
                        && m.getParameterCount() == 2
                        && (m.getParameterTypes()[0] == HttpServletRequest.class
                                || m.getParameterTypes()[0] == ServletRequest.class)
                        && (m.getParameterTypes()[1] == HttpServletResponse.class
                                || m.getParameterTypes()[1] == ServletResponse.class)) {
                    return true;
                }
            }
        }
        return false;
    }

    private static Method declared(Class<?> type, String name) {
        for (Class<?> c = type; c != null && c != HttpServlet.class; c = c.getSuperclass()) {
            try {
                return c.getDeclaredMethod(name, HttpServletRequest.class, HttpServletResponse.class);
            } catch (NoSuchMethodException e) {
                // look further up
            }
        }
        return null;
    }
}
