package dev.outbox.http.server;

import jakarta.servlet.http.HttpServletRequest;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.security.Principal;
import java.util.Objects;
import java.util.function.Function;

/**
 * Decides the scope of a request's key: who sent it and what it is for. A key is looked up only
 * within its scope, so the same key from two principals, or for two routes, are two unrelated keys,
 * and no one can read a response stored under someone else's scope.
 *
 * <p>The scopes built here read {@code <identity> <METHOD> <path>}, each part URL-encoded, for
 * example {@code principal:alice POST /orders}. The path is the request's path inside the
 * application ({@code servletPath + pathInfo}); a filter runs before routing, so it sees {@code
 * /orders/42}, not a route template such as {@code /orders/{id}}, which keeps keys of different
 * resources apart. The scope is part of the key's identity; long scopes are stored hashed (see
 * {@link IdempotencyStore}).
 *
 * <p>The path leaves out the context path (the application's own prefix in its container, {@code
 * /shop} of {@code /shop/orders}), and the scope names no host or port: an application moved to
 * another context path keeps its keys, and two applications with the same paths and callers, under
 * two context paths of one container or in two services, have the same scopes. When such
 * applications share one {@code idempotency_key} table, give each store its own {@link
 * IdempotencyStore.Builder#application application}, which the store puts before every scope.
 */
@FunctionalInterface
public interface ScopeResolver {

    /**
     * @param request the request
     * @return its scope, never empty; or null when the request has no caller identity that the scope
     *     needs, which the filter refuses with 401
     */
    String scope(HttpServletRequest request);

    /**
     * The default: the authenticated principal's name ({@link HttpServletRequest#getUserPrincipal()}).
     * A request without a principal (or with one whose name is blank) has no scope and is refused with
     * 401: keys of callers nobody
     * identified would otherwise share one scope, where one caller who learns another's key can
     * read that response (and a 422 tells whether a key exists). A principal missing on a path that
     * does authenticate usually means the filter runs before authentication: order it after.
     *
     * <p>Principal names are compared as they are: when two tenants can each have an {@code alice},
     * use {@link #identity} with an issuer- or tenant-qualified name.
     *
     * @return the resolver
     */
    static ScopeResolver principal() {
        return identity(request -> {
            String name = principalName(request);
            return name == null ? null : "principal:" + name;
        });
    }

    /**
     * The principal's name, or {@code anonymous} for every caller without one: all anonymous callers
     * share one scope per route. Only for endpoints that are meant to be called without
     * authentication (for example behind a gateway that authenticates service-to-service calls),
     * with keys nobody can guess (UUIDs).
     *
     * @return the resolver
     */
    static ScopeResolver principalOrAnonymous() {
        return identity(request -> {
            String name = principalName(request);
            return name == null ? "anonymous" : "principal:" + name;
        });
    }

    /**
     * The principal's name, else the value of a tenant header; a request with neither has no scope
     * and is refused with 401. Only use a header that your gateway sets and strips from client
     * requests: a header the client controls lets it pick any tenant's scope.
     *
     * @param tenantHeader the header, e.g. {@code X-Tenant-Id}
     * @return the resolver
     * @throws NullPointerException when {@code tenantHeader} is null
     * @throws IllegalArgumentException when it is blank
     */
    static ScopeResolver principalOrTenantHeader(String tenantHeader) {
        Objects.requireNonNull(tenantHeader, "tenantHeader may not be null");
        if (tenantHeader.isBlank()) {
            throw new IllegalArgumentException(
                    "tenantHeader may not be blank; name the header that carries the tenant id");
        }
        return identity(request -> {
            String name = principalName(request);
            if (name != null) {
                return "principal:" + name;
            }
            String tenant = request.getHeader(tenantHeader);
            return tenant == null || tenant.isBlank() ? null : "tenant:" + tenant.strip();
        });
    }

    /**
     * @return the name of the request's principal; null when it has none, or one whose name is null or
     *     blank (every such caller would otherwise share one scope, {@code principal:})
     */
    private static String principalName(HttpServletRequest request) {
        Principal p = request.getUserPrincipal();
        String name = p == null ? null : p.getName();
        return name == null || name.isBlank() ? null : name;
    }

    /**
     * A scope of your identity, the method and the path, e.g. for an identity from Spring Security
     * or a verified JWT claim.
     *
     * @param identity the caller's identity for a request, or null when the request has none (the
     *     filter then answers 401). A blank identity (empty or white space only, such as a claim
     *     present but empty) is taken as none too, and answered 401: otherwise every such caller
     *     would share one scope and could read the others' stored responses.
     * @return the resolver
     * @throws NullPointerException when {@code identity} is null
     */
    static ScopeResolver identity(Function<HttpServletRequest, String> identity) {
        Objects.requireNonNull(identity, "identity may not be null");
        return request -> {
            String who = identity.apply(request);
            return who == null || who.isBlank()
                    ? null
                    : encode(who) + " " + request.getMethod() + " " + encode(path(request));
        };
    }

    /**
     * @param request a request
     * @return its path inside the application: {@code servletPath + pathInfo}, without the context
     *     path or the query string
     */
    static String path(HttpServletRequest request) {
        String servletPath = request.getServletPath() == null ? "" : request.getServletPath();
        String pathInfo = request.getPathInfo() == null ? "" : request.getPathInfo();
        String path = servletPath + pathInfo;
        return path.isEmpty() ? "/" : path;
    }

    private static String encode(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("%2F", "/").replace("%3A", ":");
    }
}
