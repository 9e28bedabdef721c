package dev.outbox.http.server;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import jakarta.servlet.Filter;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.Principal;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jooq.DSLContext;
import org.jooq.impl.DSL;

/**
 * A small orders service: {@code POST /orders} (and {@code /orders/express}) inserts an order row
 * and appends an outbox message in the filter's transaction, then answers 201 with the order (the
 * body, or the {@code order} field of a form whose body a filter ahead parsed into the parameters).
 * Test knobs: header {@code X-Fail} fails after the writes: {@code throw} throws, {@code 503},
 * {@code 400} and {@code 429} answer that status, {@code resolved-422} throws an exception that
 * the servlet's own exception resolver turns into a 422 (as Spring MVC's resolvers do, so the
 * filter never sees the exception), {@code redirect} redirects to the new order
 * ({@code sendRedirect}: 302); {@code X-Answer: text} answers 201 with the body as {@code
 * text/plain} written through {@code getWriter()}, no charset named; {@code X-Hold: true} waits on
 * {@link #release} after signalling {@link #entered}.
 */
final class OrdersApp extends HttpServlet {
    static final String CREATE_TABLE = "create table orders (id uuid primary key, body text not null)";

    final Outbox outbox = Outbox.builder().build();
    final AtomicInteger arrivals = new AtomicInteger();
    volatile CountDownLatch arrived = new CountDownLatch(0);
    volatile CountDownLatch entered = new CountDownLatch(0);
    volatile CountDownLatch release = new CountDownLatch(0);

    /** An exception that the application's resolver turns into a status, as {@code ResponseStatusException} does. */
    static final class Rejected extends RuntimeException {
        final int status;

        Rejected(int status, String message) {
            super(message);
            this.status = status;
        }
    }

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws ServletException, IOException {
        try {
            super.service(req, resp);
        } catch (Rejected e) {
            resp.sendError(e.status, e.getMessage());
        }
    }

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String body = new String(req.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (body.isEmpty()
                && req.getContentType() != null
                && req.getContentType().startsWith("application/x-www-form")) {
            // a form a filter ahead parsed into the parameters: its order field stands for the body
            body = req.getParameter("order") == null ? "" : req.getParameter("order");
        }
        DSLContext tx = IdempotencyFilter.transaction(req);
        UUID id = UUID.randomUUID();
        tx.execute("insert into public.orders (id, body) values ({0}, {1})", DSL.val(id), DSL.val(body));
        outbox.append(
                tx,
                OutboxMessage.of(
                        "orders",
                        id.toString(),
                        "OrderPlaced",
                        "application/json",
                        body.getBytes(StandardCharsets.UTF_8)));
        if ("true".equals(req.getHeader("X-Hold"))) {
            entered.countDown();
            try {
                if (!release.await(60, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("the test never released the held request");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
        }
        String fail = req.getHeader("X-Fail");
        if ("throw".equals(fail)) {
            throw new IllegalStateException("order rejected by a failing downstream check");
        }
        if ("503".equals(fail)) {
            resp.sendError(503, "inventory unavailable");
            return;
        }
        if ("resolved-422".equals(fail)) {
            throw new Rejected(422, "order " + id + " rejected: out of stock");
        }
        if ("429".equals(fail)) {
            resp.setStatus(429);
            resp.setHeader("Retry-After", "1");
            return;
        }
        if ("redirect".equals(fail)) {
            resp.sendRedirect("/orders/" + id);
            return;
        }
        if ("text".equals(req.getHeader("X-Answer"))) {
            resp.setStatus(201);
            resp.setContentType("text/plain");
            resp.getWriter().write(body);
            return;
        }
        if ("400".equals(fail)) {
            resp.setStatus(400);
            resp.setContentType("application/json");
            resp.getWriter().write("{\"error\":\"invalid order\",\"id\":\"" + id + "\"}");
            return;
        }
        resp.setStatus(201);
        resp.setHeader("Location", "/orders/" + id);
        resp.setHeader("X-Request-Only", "not stored");
        resp.setContentType("application/json");
        resp.getWriter().write("{\"id\":\"" + id + "\",\"body\":" + quote(body) + "}");
    }

    private static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    /** Counts requests as they arrive, before the idempotency filter. */
    Filter arrivalCounter() {
        return (request, response, chain) -> {
            arrivals.incrementAndGet();
            arrived.countDown();
            chain.doFilter(request, response);
        };
    }

    /** Authenticates the {@code X-User} header as the principal, as a login filter would. */
    static Filter fakeLogin() {
        return (request, response, chain) -> {
            HttpServletRequest http = (HttpServletRequest) request;
            String user = http.getHeader("X-User");
            if (user == null) {
                chain.doFilter(request, response);
                return;
            }
            Principal principal = () -> user;
            chain.doFilter(
                    new HttpServletRequestWrapper(http) {
                        @Override
                        public Principal getUserPrincipal() {
                            return principal;
                        }
                    },
                    response);
        };
    }
}
