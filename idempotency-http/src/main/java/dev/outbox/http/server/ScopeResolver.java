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
 * resources apart.
 */
@FunctionalInterface
public interface ScopeResolver {

  /**
   * @param request the request
   * @return its scope, never null or empty
   */
  String scope(HttpServletRequest request);

  /**
   * The default: the authenticated principal's name ({@link HttpServletRequest#getUserPrincipal()}),
   * or {@code anonymous} when there is none. All anonymous callers share one scope per route, so one
   * of them who learns another's key could read that response: give anonymous endpoints keys that
   * cannot be guessed (UUIDs), or use {@link #principalOrTenantHeader}.
   *
   * @return the resolver
   */
  static ScopeResolver principal() {
    return identity(request -> {
      Principal p = request.getUserPrincipal();
      return p == null ? "anonymous" : "principal:" + p.getName();
    });
  }

  /**
   * The principal's name, else the value of a tenant header, else {@code anonymous}. Only use a
   * header that your gateway sets and strips from client requests: a header the client controls
   * lets it pick any tenant's scope.
   *
   * @param tenantHeader the header, e.g. {@code X-Tenant-Id}
   * @return the resolver
   * @throws NullPointerException when {@code tenantHeader} is null
   * @throws IllegalArgumentException when it is blank
   */
  static ScopeResolver principalOrTenantHeader(String tenantHeader) {
    Objects.requireNonNull(tenantHeader, "tenantHeader may not be null");
    if (tenantHeader.isBlank()) {
      throw new IllegalArgumentException("tenantHeader may not be blank; name the header that carries the tenant id");
    }
    return identity(request -> {
      Principal p = request.getUserPrincipal();
      if (p != null) {
        return "principal:" + p.getName();
      }
      String tenant = request.getHeader(tenantHeader);
      return tenant == null || tenant.isBlank() ? "anonymous" : "tenant:" + tenant.strip();
    });
  }

  /**
   * A scope of your identity, the method and the path, e.g. for an identity from Spring Security
   * or a verified JWT claim.
   *
   * @param identity the caller's identity for a request, never null
   * @return the resolver
   * @throws NullPointerException when {@code identity} is null
   */
  static ScopeResolver identity(Function<HttpServletRequest, String> identity) {
    Objects.requireNonNull(identity, "identity may not be null");
    return request -> {
      String who = Objects.requireNonNull(identity.apply(request), "the scope's identity function returned null");
      return encode(who) + " " + request.getMethod() + " " + encode(path(request));
    };
  }

  /**
   * @param request a request
   * @return its path inside the application: {@code servletPath + pathInfo}
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
