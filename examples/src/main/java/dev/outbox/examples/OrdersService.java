package dev.outbox.examples;

import static dev.outbox.examples.Shop.AMOUNT_CENTS;
import static dev.outbox.examples.Shop.CLIENT_REF;
import static dev.outbox.examples.Shop.CURRENCY;
import static dev.outbox.examples.Shop.CUSTOMER_ID;
import static dev.outbox.examples.Shop.ORDERS;
import static dev.outbox.examples.Shop.ORDER_ID;
import static dev.outbox.examples.Shop.QUANTITY;
import static dev.outbox.examples.Shop.SKU;

import dev.outbox.core.MessageIds;
import dev.outbox.core.Outbox;
import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.ScopeResolver;
import dev.outbox.http.server.gate.GateReport;
import dev.outbox.http.server.gate.IdempotencyGate;
import dev.outbox.schemas.orders.OrderLine;
import dev.outbox.schemas.orders.OrderPlaced;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.WriteListener;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpServletResponseWrapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import javax.sql.DataSource;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.NetworkConnector;
import org.eclipse.jetty.server.Server;
import org.jooq.DSLContext;

/**
 * The orders service: {@code POST /orders} protected by Idempotency-Key. The key row, the order
 * row, the {@code OrderPlaced} outbox message and the stored response commit in one transaction.
 * The start-up gate ({@link IdempotencyGate}) refuses to start it with a mutating endpoint that is
 * neither behind the filter nor exempted.
 *
 * <p>For the demo it can lose responses on purpose: after the transaction committed, a share of
 * responses is held back until the client's attempt timeout has passed, as when a response is lost
 * on the way back. The client then retries with the same key and gets the stored response.
 */
public final class OrdersService implements AutoCloseable {
    /** The topic OrderPlaced messages go to. */
    public static final String TOPIC = "orders";

    /**
     * The topic's settings: its records are deleted within the payments consumer's 7-day retention of processed
     * ids, as the doctor's {@code topic-retention} check asks. Kafka deletes whole segments, so a record stays for
     * up to {@code retention.ms + segment.ms}: 6 days and 1 day.
     */
    public static final Map<String, String> TOPIC_CONFIGS = Map.of(
            "retention.ms", String.valueOf(Duration.ofDays(6).toMillis()),
            "segment.ms", String.valueOf(Duration.ofDays(1).toMillis()));

    private final Server server;
    private final IdempotencyGate gate;
    private final AtomicLong lostResponses = new AtomicLong();

    private OrdersService(Server server, IdempotencyGate gate) {
        this.server = server;
        this.gate = gate;
    }

    /**
     * Starts the service.
     *
     * @param dataSource the shop's database, holding the outbox tables in schema {@code outbox}
     * @param port the port, 0 for any free one
     * @param lostResponseRate share of committed responses to lose, 0 to 1
     * @param lostResponseDelay how long a lost response is held (longer than the client's attempt timeout)
     * @return the running service
     * @throws Exception when Jetty does not start
     */
    public static OrdersService start(
            DataSource dataSource, int port, double lostResponseRate, Duration lostResponseDelay) throws Exception {
        if (lostResponseRate < 0 || lostResponseRate > 1) {
            throw new IllegalArgumentException("lostResponseRate must be between 0 and 1, got " + lostResponseRate);
        }
        Outbox outbox = Outbox.builder().build();
        IdempotencyStore store =
                IdempotencyStore.builder().dataSource(dataSource).build();
        Server server = new Server(new InetSocketAddress("0.0.0.0", port));
        // the demo has no authentication: every caller shares one scope, keyed by UUIDs nobody can guess
        IdempotencyFilter idempotency = IdempotencyFilter.builder(store)
                .paths("/orders")
                .scopeResolver(ScopeResolver.principalOrAnonymous())
                .build();
        // the start fails if a POST or PATCH servlet is added without the filter or an exemption
        IdempotencyGate gate = IdempotencyGate.builder().filter(idempotency).build();
        OrdersService service = new OrdersService(server, gate);
        ServletContextHandler context = new ServletContextHandler();
        context.addFilter(
                new FilterHolder(service.new LosingFilter(lostResponseRate, lostResponseDelay)),
                "/*",
                EnumSet.of(DispatcherType.REQUEST));
        context.addFilter(new FilterHolder(idempotency), "/*", EnumSet.of(DispatcherType.REQUEST));
        context.addServlet(new ServletHolder(new OrdersServlet(outbox)), "/orders");
        context.addEventListener(gate.listener());
        server.setHandler(context);
        server.start();
        return service;
    }

    /** @return the base URI, e.g. {@code http://127.0.0.1:8081} */
    public URI baseUri() {
        return URI.create("http://127.0.0.1:" + ((NetworkConnector) server.getConnectors()[0]).getLocalPort());
    }

    /** @return what the Idempotency-Key gate found at start */
    public GateReport gateReport() {
        return gate.lastReport();
    }

    /** @return responses lost on purpose */
    public long lostResponses() {
        return lostResponses.get();
    }

    @Override
    public void close() throws Exception {
        server.stop();
    }

    /** Creates the order and appends OrderPlaced, in the transaction the Idempotency-Key filter opened. */
    static final class OrdersServlet extends HttpServlet {
        private final transient Outbox outbox;

        OrdersServlet(Outbox outbox) {
            this.outbox = outbox;
        }

        @Override
        protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
            Map<String, String> form =
                    parseForm(new String(req.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
            String customer = form.get("customerId");
            String clientRef = form.get("clientRef");
            long amount;
            int quantity;
            try {
                amount = Long.parseLong(form.getOrDefault("amountCents", ""));
                quantity = Integer.parseInt(form.getOrDefault("quantity", "1"));
            } catch (NumberFormatException e) {
                problem(resp, "amountCents and quantity must be integers");
                return;
            }
            if (customer == null || clientRef == null || amount <= 0 || quantity <= 0) {
                problem(resp, "customerId, clientRef, a positive amountCents and a positive quantity are required");
                return;
            }
            DSLContext tx = IdempotencyFilter.transaction(req);
            UUID orderId = MessageIds.next();
            String currency = form.getOrDefault("currency", "EUR");
            String sku = form.getOrDefault("sku", "sku-1");
            tx.insertInto(ORDERS)
                    .set(ORDER_ID, orderId)
                    .set(CLIENT_REF, clientRef)
                    .set(CUSTOMER_ID, customer)
                    .set(AMOUNT_CENTS, amount)
                    .set(CURRENCY, currency)
                    .set(SKU, sku)
                    .set(QUANTITY, quantity)
                    .execute();
            OrderPlaced event = OrderPlaced.newBuilder()
                    .setOrderId(orderId.toString())
                    .setCustomerId(customer)
                    .setAmountCents(amount)
                    .setCurrency(currency)
                    .setPlacedAt(Instant.now())
                    .setLines(List.of(OrderLine.newBuilder()
                            .setSku(sku)
                            .setQuantity(quantity)
                            .build()))
                    .build();
            // keyed by order: every event of one order keeps its order on the topic
            outbox.append(tx, TOPIC, orderId.toString(), event);
            resp.setStatus(201);
            resp.setHeader("Location", "/orders/" + orderId);
            resp.setContentType("application/json");
            resp.getWriter().write("{\"orderId\":\"" + orderId + "\"}");
        }

        private static void problem(HttpServletResponse resp, String detail) throws IOException {
            resp.setStatus(400);
            resp.setContentType("application/problem+json");
            resp.getWriter().write("{\"title\":\"Bad order\",\"status\":400,\"detail\":\"" + detail + "\"}");
        }

        private static Map<String, String> parseForm(String body) {
            Map<String, String> out = new HashMap<>();
            for (String pair : body.split("&")) {
                int eq = pair.indexOf('=');
                if (eq > 0) {
                    out.put(
                            URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8),
                            URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
                }
            }
            return out;
        }
    }

    /** Loses a share of responses after the work behind them committed. */
    final class LosingFilter implements Filter {
        private final double rate;
        private final Duration delay;

        LosingFilter(double rate, Duration delay) {
            this.rate = rate;
            this.delay = delay;
        }

        @Override
        public void doFilter(ServletRequest req, ServletResponse res, FilterChain chain)
                throws IOException, ServletException {
            boolean lose = rate > 0
                    && ThreadLocalRandom.current().nextDouble() < rate
                    && "POST".equals(((HttpServletRequest) req).getMethod());
            if (!lose) {
                chain.doFilter(req, res);
                return;
            }
            var buffered = new BufferedResponse((HttpServletResponse) res);
            chain.doFilter(req, buffered);
            // the order is committed; the client never hears of it
            lostResponses.incrementAndGet();
            try {
                Thread.sleep(delay.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            ((HttpServletResponse) res).sendError(503);
        }
    }

    /** Swallows what the application writes. */
    static final class BufferedResponse extends HttpServletResponseWrapper {
        private final ByteArrayOutputStream sink = new ByteArrayOutputStream();
        private final PrintWriter writer = new PrintWriter(sink, true, StandardCharsets.UTF_8);

        BufferedResponse(HttpServletResponse response) {
            super(response);
        }

        @Override
        public ServletOutputStream getOutputStream() {
            return new ServletOutputStream() {
                @Override
                public boolean isReady() {
                    return true;
                }

                @Override
                public void setWriteListener(WriteListener listener) {}

                @Override
                public void write(int b) {
                    sink.write(b);
                }
            };
        }

        @Override
        public PrintWriter getWriter() {
            return writer;
        }

        private int status = 200;

        @Override
        public void setStatus(int sc) {
            status = sc;
        }

        @Override
        public int getStatus() {
            return status;
        }

        @Override
        public void setHeader(String name, String value) {}

        @Override
        public void addHeader(String name, String value) {}

        @Override
        public void setContentType(String type) {}

        @Override
        public void flushBuffer() {}

        @Override
        public void sendError(int sc) {}

        @Override
        public void sendError(int sc, String msg) {}

        @Override
        public void setIntHeader(String name, int value) {}

        @Override
        public void addIntHeader(String name, int value) {}

        @Override
        public void setDateHeader(String name, long date) {}

        @Override
        public void addDateHeader(String name, long date) {}

        @Override
        public void setContentLength(int len) {}

        @Override
        public void setContentLengthLong(long len) {}

        @Override
        public void setCharacterEncoding(String charset) {}
    }
}
