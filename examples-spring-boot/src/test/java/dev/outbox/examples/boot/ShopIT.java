package dev.outbox.examples.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.relay.admin.Doctor;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The Spring Boot example end to end on real PostgreSQL and the in-JVM Kafka broker, under the
 * failures the design exists for: clients lose responses after the server committed and retry
 * with the same Idempotency-Key (G5), and Kafka delivers records twice (G4). Every order is
 * created once, published by the relay (G1) and charged once: 0 double charges, 0 lost orders.
 *
 * <p>The database starts without the outbox schema, so the starter's migrations and the
 * application's own {@code V1__shop.sql} both run at start, each with its own Flyway history.
 */
@ExtendWith(ShopIT.DropDatabaseAtEnd.class)
@SpringBootTest(
        webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = {"outbox.relay.enabled=true", "outbox.relay.idle-poll-interval=100ms"})
@DirtiesContext
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ShopIT {
    static final int OPERATIONS = 200;
    static final int CLIENTS = 4;
    static final double LOST_RESPONSE_RATE = 0.2;
    static final double DUPLICATE_RATE = 0.3;
    static final String INJECTED = "test-injected-duplicate";

    static final TestDatabase DB = databaseWithoutOutbox();
    static final TestKafka KAFKA = TestKafka.shared();
    static final String TOPIC = TestKafka.uniqueTopic("boot-orders");

    private static final AtomicBoolean STOP = new AtomicBoolean();
    private static final AtomicInteger INJECTED_DUPLICATES = new AtomicInteger();
    private static Thread duplicator;

    @LocalServerPort
    int port;

    @Autowired
    JdbcTemplate jdbc;

    static TestDatabase databaseWithoutOutbox() {
        TestDatabase db = TestDatabase.create();
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("drop schema " + db.schema() + " cascade");
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        return db;
    }

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        // deleted within the listener's 7-day retention of processed ids, whole segments included (doctor, below)
        KAFKA.createTopic(
                TOPIC,
                3,
                Map.of(
                        "retention.ms", String.valueOf(Duration.ofDays(6).toMillis()),
                        "segment.ms", String.valueOf(Duration.ofDays(1).toMillis())));
        registry.add("spring.datasource.url", DB::jdbcUrl);
        registry.add("spring.datasource.username", DB::user);
        registry.add("spring.datasource.password", DB::password);
        registry.add("spring.kafka.bootstrap-servers", KAFKA::bootstrapServers);
        registry.add("shop.orders-topic", () -> TOPIC);
        duplicator = Thread.ofPlatform().name("duplicator").daemon().start(ShopIT::duplicate);
    }

    @AfterAll
    static void stopDuplicator() throws InterruptedException {
        STOP.set(true);
        duplicator.join(Duration.ofSeconds(30));
    }

    /** G1, G4, G5: lost responses and duplicated deliveries, and still every order is charged once. */
    @Test
    void everyOrderIsChargedExactlyOnce() throws Exception {
        HttpClient http =
                HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        AtomicInteger lostResponses = new AtomicInteger();
        AtomicInteger replays = new AtomicInteger();
        Set<String> orderIds = ConcurrentHashMap.newKeySet();
        ExecutorService clients = Executors.newFixedThreadPool(CLIENTS);
        List<Future<?>> done = new ArrayList<>();
        for (int op = 0; op < OPERATIONS; op++) {
            int n = op;
            done.add(clients.submit(() -> {
                String key = UUID.randomUUID().toString();
                String body = "{\"customerId\":\"c-" + n + "\",\"amountCents\":" + (1000 + n)
                        + ",\"currency\":\"EUR\",\"sku\":\"sku-1\",\"quantity\":1}";
                while (true) {
                    HttpResponse<String> response = post(http, key, body);
                    assertThat(response.statusCode()).as(response.body()).isEqualTo(201);
                    if (ThreadLocalRandom.current().nextDouble() < LOST_RESPONSE_RATE) {
                        lostResponses.incrementAndGet(); // the server committed; the client never saw it and retries
                        continue;
                    }
                    if (response.headers().firstValue("Idempotent-Replayed").isPresent()) {
                        replays.incrementAndGet();
                    }
                    orderIds.add(response.body());
                    return null;
                }
            }));
        }
        for (Future<?> f : done) {
            f.get(3, TimeUnit.MINUTES);
        }
        clients.shutdown();

        assertThat(lostResponses.get()).as("responses lost on purpose").isPositive();
        assertThat(replays.get())
                .as("retries answered from the stored response")
                .isPositive();
        assertThat(orderIds).hasSize(OPERATIONS);
        assertThat(count("select count(*) from orders"))
                .as("orders created, retries included")
                .isEqualTo(OPERATIONS);

        await().atMost(Duration.ofMinutes(2)).untilAsserted(() -> {
            assertThat(count("select count(*) from orders o where not exists"
                            + " (select 1 from payments p where p.order_id = o.id)"))
                    .as("orders not charged yet")
                    .isZero();
            assertThat(INJECTED_DUPLICATES.get())
                    .as("records delivered twice on purpose")
                    .isPositive();
        });
        System.out.printf(
                "ShopIT summary: %d operations by %d clients, %d responses lost and retried, %d replayed, %d records"
                        + " delivered twice, %d orders, %d payments, %d double charges%n",
                OPERATIONS,
                CLIENTS,
                lostResponses.get(),
                replays.get(),
                INJECTED_DUPLICATES.get(),
                count("select count(*) from orders"),
                count("select count(*) from payments"),
                count("select count(*) from (select order_id from payments group by order_id having count(*) > 1) d"));
        assertThat(count(
                        "select count(*) from (select order_id from payments group by order_id having count(*) > 1) d"))
                .as("double charges")
                .isZero();
        assertThat(count("select count(*) from payments")).isEqualTo(OPERATIONS);
        assertThat(count("select count(*) from flyway_schema_history where success"))
                .as("the application's own V1 ran beside the outbox's")
                .isEqualTo(1);
        assertThat(count("select count(*) from outbox.outbox_schema_history where success"))
                .isGreaterThanOrEqualTo(5);

        // the deployment passes the doctor: unique constraints, expiries, stored responses, no key in
        // flight, the consumer's retention against the topic's, nothing parked or left unpublished
        Doctor.Report report = Doctor.builder()
                .dataSource(DB.dataSource())
                .consumer(PaymentsListener.CONSUMER, TOPIC)
                .kafkaProperties(Map.of("bootstrap.servers", KAFKA.bootstrapServers()))
                .build()
                .run();
        assertThat(report.failed()).as("%s", report).isFalse();
        assertThat(report.check("stored-responses").verdict()).isEqualTo(Doctor.Verdict.PASS);
        assertThat(report.check("topic-retention").verdict()).isEqualTo(Doctor.Verdict.PASS);
    }

    private HttpResponse<String> post(HttpClient http, String key, String body) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/orders"))
                .timeout(Duration.ofSeconds(30))
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", "\"" + key + "\"")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build();
        return http.send(request, HttpResponse.BodyHandlers.ofString());
    }

    private int count(String sql) {
        Integer n = jdbc.queryForObject(sql, Integer.class);
        return n == null ? 0 : n;
    }

    /** Sends a share of the relay's records a second time, headers and key included, as Kafka may. */
    private static void duplicate() {
        Properties props = KAFKA.consumerProperties("duplicator-" + TOPIC);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props);
                KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(KAFKA.producerProperties())) {
            consumer.subscribe(List.of(TOPIC));
            while (!STOP.get()) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    if (r.headers().lastHeader(INJECTED) == null
                            && ThreadLocalRandom.current().nextDouble() < DUPLICATE_RATE) {
                        ProducerRecord<byte[], byte[]> copy =
                                new ProducerRecord<>(r.topic(), r.partition(), r.key(), r.value(), r.headers());
                        copy.headers().add(INJECTED, "true".getBytes(StandardCharsets.UTF_8));
                        producer.send(copy);
                        INJECTED_DUPLICATES.incrementAndGet();
                    }
                }
                consumer.commitSync();
            }
        }
    }

    /** Drops the database at the end of the run, after Spring closed the context and its pool. */
    static final class DropDatabaseAtEnd implements BeforeAllCallback {
        @Override
        public void beforeAll(ExtensionContext context) {
            context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL).put(DB.name(), DB);
        }
    }
}
