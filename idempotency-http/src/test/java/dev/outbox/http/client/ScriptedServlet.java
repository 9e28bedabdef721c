package dev.outbox.http.client;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;

/** Answers each request as the test scripts it, and records what it received. */
final class ScriptedServlet extends HttpServlet {
    /**
     * @param headersFirst send the status, headers and part of the body, then hold the rest
     * @param contentType the body's type; with {@code body} null, text/plain
     * @param body the body, or null for "reply (index) status (status)"
     */
    record Reply(
            int status,
            Map<String, String> headers,
            CountDownLatch holdUntil,
            boolean headersFirst,
            String contentType,
            String body) {
        Reply(int status, Map<String, String> headers, CountDownLatch holdUntil, boolean headersFirst) {
            this(status, headers, holdUntil, headersFirst, null, null);
        }

        Reply(int status, Map<String, String> headers, CountDownLatch holdUntil) {
            this(status, headers, holdUntil, false);
        }

        /** @return a reply with this body, such as a gateway's HTML error page */
        static Reply page(int status, String contentType, String body) {
            return new Reply(status, Map.of(), null, false, contentType, body);
        }

        static Reply of(int status) {
            return new Reply(status, Map.of(), null);
        }

        static Reply of(int status, String header, String value) {
            return new Reply(status, Map.of(header, value), null);
        }
    }

    record Received(String method, String idempotencyKey) {}

    final List<Received> received = new CopyOnWriteArrayList<>();
    private volatile IntFunction<Reply> script = i -> Reply.of(200);

    /** Replaces the script and forgets what was received. */
    synchronized void script(IntFunction<Reply> script) {
        received.clear();
        this.script = script;
    }

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        int index;
        IntFunction<Reply> current;
        synchronized (this) {
            received.add(new Received(req.getMethod(), req.getHeader("Idempotency-Key")));
            index = received.size() - 1;
            current = script;
        }
        Reply reply = current.apply(index);
        if (reply.headersFirst()) {
            resp.setStatus(reply.status());
            resp.setContentType("text/plain");
            resp.getWriter().write("reply " + index + " begins");
            resp.flushBuffer();
        }
        if (reply.holdUntil() != null) {
            try {
                reply.holdUntil().await(60, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        resp.setStatus(reply.status());
        reply.headers().forEach(resp::setHeader);
        if (reply.body() != null) {
            resp.setContentType(reply.contentType());
            resp.getWriter().write(reply.body());
        } else {
            resp.setContentType("text/plain");
            resp.getWriter().write("reply " + index + " status " + reply.status());
        }
    }
}
