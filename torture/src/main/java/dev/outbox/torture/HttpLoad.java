package dev.outbox.torture;

import dev.outbox.core.retry.Backoff;
import dev.outbox.http.client.CallResult;
import dev.outbox.http.client.HttpCallException;
import dev.outbox.http.client.IdempotentHttpClient;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;

/**
 * Orders sent through the orders service with the retrying client: one Idempotency-Key per
 * operation, reused on every attempt; when the client gives up (attempts, budget or breaker), the
 * operation is resumed later with the same key, as a job queue would.
 */
final class HttpLoad {
    private static final int CLIENTS = 4;
    private static final int RESUMPTIONS = 40;

    private final Options o;
    private final URI uri;
    private final AtomicInteger next = new AtomicInteger();
    private final AtomicInteger done = new AtomicInteger();
    private final AtomicIntegerArray answered;
    private final List<Thread> threads = new ArrayList<>();
    private final long startNanos = System.nanoTime();
    private final IdempotentHttpClient client = IdempotentHttpClient.builder()
            .attemptTimeout(Duration.ofSeconds(2))
            .maxAttempts(8)
            .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(2)))
            .build();

    HttpLoad(Options o, URI uri) {
        this.o = o;
        this.uri = uri;
        this.answered = new AtomicIntegerArray(o.httpOperations());
    }

    void start() {
        for (int c = 0; c < CLIENTS; c++) {
            threads.add(Thread.ofPlatform().name("torture-http-" + c).start(this::send));
        }
    }

    void await() throws InterruptedException {
        for (Thread t : threads) {
            t.join();
        }
    }

    int done() {
        return done.get();
    }

    static String clientRef(int op) {
        return "op-" + op;
    }

    /** @return whether operation {@code op} got its 201 in the end */
    boolean answered(int op) {
        return answered.get(op) == 1;
    }

    int operations() {
        return o.httpOperations();
    }

    private void send() {
        long periodNanos = o.httpOperations() == 0 ? 0 : o.duration().toNanos() / o.httpOperations();
        int op;
        while ((op = next.getAndIncrement()) < o.httpOperations()) {
            long wait = startNanos + op * periodNanos - System.nanoTime();
            if (wait > 0) {
                LockSupport.parkNanos(wait);
            }
            String body = "clientRef=" + clientRef(op) + "&customerId=c-" + (op % 97) + "&amountCents=" + (1000 + op)
                    + "&currency=EUR&sku=sku-1&quantity=1";
            HttpRequest request = HttpRequest.newBuilder(uri)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .POST(HttpRequest.BodyPublishers.ofString(body))
                    .build();
            String key = null;
            for (int r = 0; r < RESUMPTIONS && answered.get(op) == 0; r++) {
                try {
                    CallResult<String> result = key == null
                            ? client.send(request, HttpResponse.BodyHandlers.ofString())
                            : client.send(request, HttpResponse.BodyHandlers.ofString(), key);
                    key = result.idempotencyKey();
                    if (result.status() == 201) {
                        answered.set(op, 1);
                    }
                } catch (HttpCallException e) {
                    key = e.idempotencyKey();
                } catch (IOException e) {
                    // not sent at all: nothing to resume with
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
                if (answered.get(op) == 0) {
                    LockSupport.parkNanos(500_000_000L);
                }
            }
            done.incrementAndGet();
        }
    }
}
