package dev.outbox.http.client.internal;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.List;
import java.util.Locale;

/**
 * The targets declared as honouring {@code Idempotency-Key}: hosts (any port), {@code host:port},
 * or base URIs (scheme, host, port and a path prefix).
 */
public final class Targets {
    private record Target(String scheme, String host, int port, String pathPrefix) {
        boolean matches(URI uri) {
            String h = uri.getHost();
            if (h == null || !h.equalsIgnoreCase(host)) {
                return false;
            }
            if (scheme != null && !scheme.equalsIgnoreCase(uri.getScheme())) {
                return false;
            }
            if (port >= 0 && port != portOf(uri)) {
                return false;
            }
            if (pathPrefix.isEmpty()) {
                return true;
            }
            String path = uri.getRawPath() == null ? "" : uri.getRawPath();
            return path.equals(pathPrefix) || path.startsWith(pathPrefix.endsWith("/") ? pathPrefix : pathPrefix + "/");
        }
    }

    private final List<Target> targets;

    private Targets(List<Target> targets) {
        this.targets = targets;
    }

    /**
     * @param declared hosts ({@code payments.internal}), {@code host:port} or base URIs ({@code
     *     https://api.example.com/v1})
     * @return the targets
     * @throws IllegalArgumentException naming the entry that is none of these
     */
    public static Targets parse(List<String> declared) {
        return new Targets(declared.stream().map(Targets::target).toList());
    }

    /** @return whether {@code uri} is one of the declared targets */
    public boolean honoursKey(URI uri) {
        for (Target t : targets) {
            if (t.matches(uri)) {
                return true;
            }
        }
        return false;
    }

    static int portOf(URI uri) {
        int port = uri.getPort();
        return port >= 0 ? port : "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
    }

    private static Target target(String entry) {
        String e = entry.strip();
        String fix = "; give a host (payments.internal), host:port (payments.internal:8443) or a base URI"
                + " (https://payments.internal/v1)";
        if (e.isEmpty()) {
            throw new IllegalArgumentException("idempotentTargets may not contain a blank entry" + fix);
        }
        try {
            if (e.contains("://")) {
                URI uri = new URI(e);
                String scheme = uri.getScheme().toLowerCase(Locale.ROOT);
                if (!scheme.equals("http") && !scheme.equals("https")
                        || uri.getHost() == null
                        || uri.getRawQuery() != null
                        || uri.getRawFragment() != null) {
                    throw new IllegalArgumentException("idempotentTargets entry '" + entry
                            + "' is not an http(s) base URI with a host" + " and without query or fragment" + fix);
                }
                String path = uri.getRawPath() == null ? "" : uri.getRawPath();
                return new Target(scheme, uri.getHost(), portOf(uri), path.equals("/") ? "" : path);
            }
            URI uri = new URI("http://" + e);
            if (uri.getHost() == null
                    || (uri.getRawPath() != null && !uri.getRawPath().isEmpty())
                    || uri.getUserInfo() != null) {
                throw new IllegalArgumentException(
                        "idempotentTargets entry '" + entry + "' is not a host or host:port" + fix);
            }
            return new Target(null, uri.getHost(), uri.getPort(), "");
        } catch (URISyntaxException ex) {
            throw new IllegalArgumentException(
                    "idempotentTargets entry '" + entry + "' does not parse: " + ex.getMessage() + fix, ex);
        }
    }
}
