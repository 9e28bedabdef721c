package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.core.OutboxMessage;
import dev.outbox.http.server.ScopeResolver;
import dev.outbox.testkit.TestDatabase;
import jakarta.persistence.Entity;
import jakarta.persistence.EntityManager;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.PersistenceContext;
import jakarta.persistence.SequenceGenerator;
import jakarta.persistence.Table;
import jakarta.servlet.http.HttpServletRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.persistence.autoconfigure.EntityScan;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.ApplicationEventPublisher;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.stereotype.Service;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.annotation.Transactional;
import org.springframework.transaction.event.TransactionPhase;
import org.springframework.transaction.event.TransactionalEventListener;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.server.ResponseStatusException;

/**
 * The starter in a JPA (Hibernate) application, with Spring Boot's {@code JpaTransactionManager}, on
 * real PostgreSQL and a real servlet container.
 *
 * <p>The Idempotency-Key filter: JPA holds writes in its persistence context until it flushes, at
 * the latest when the transaction commits, and knows nothing of the savepoint the filter rolls back
 * to for a stored refusal (422). G5: a refusal that is stored and replayed leaves none of the
 * handler's writes behind, whether JPA had flushed them or not; a success commits them once, and
 * its replay writes nothing.
 *
 * <p>The templates: an append (G1, G2) and a dedup claim (G4) in a {@code @Transactional} method
 * commit and roll back with the entities that method persists.
 */
@ExtendWith(DropDatabaseAtEnd.class)
@SpringBootTest(classes = JpaApplicationIT.App.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
@DirtiesContext
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class JpaApplicationIT {
    static final TestDatabase DB = createDatabase();

    @LocalServerPort
    int port;

    @Autowired
    JdbcTemplate jdbc;

    @Autowired
    Shipping shipping;

    final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    static TestDatabase createDatabase() {
        TestDatabase db = TestDatabase.create();
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            // ids from a sequence (Hibernate's default): a persisted entity is inserted at the flush
            st.execute("create sequence shipment_seq increment by 50");
            st.execute("create table shipment(id bigint primary key, order_ref text not null)");
            // ids from the column (IDENTITY): a persisted entity is inserted at once
            st.execute("create table parcel(id bigserial primary key, order_ref text not null)");
            st.execute("create table stock(sku text primary key, quantity int not null check (quantity >= 0))");
            st.execute("insert into stock values ('sku-1', 10), ('sku-2', 1)");
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        return db;
    }

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("spring.datasource.url", DB::jdbcUrl);
        registry.add("spring.datasource.username", DB::user);
        registry.add("spring.datasource.password", DB::password);
        registry.add("spring.jpa.hibernate.ddl-auto", () -> "none");
        registry.add(
                "outbox.idempotency.paths",
                () -> "/shipments/*,/parcels/*,/stock/*,/later-shipments/*,/refused-shipments/*,/doomed-shipments/*,"
                        + "/rejected-shipments/*,/announced-shipments/*");
        // the start-up gate refuses the covered async handler (IdempotencyGateStarterTest); warn-only lets this
        // test show what the filter does with one at run time
        registry.add("outbox.idempotency.gate.warn-only", () -> "true");
    }

    /**
     * G5: a handler that answers asynchronously (a {@code Callable}) is refused before Spring hands its
     * work to another thread, where it would commit outside the key's transaction and run again on
     * every retry: the request fails, nothing of it is committed, and the key is free again.
     */
    @Test
    void anAsyncHandlerIsRefusedBeforeItsWorkRuns() throws Exception {
        String ref = "ref-" + UUID.randomUUID();
        String key = UUID.randomUUID().toString();
        assertThat(post("/later-shipments/" + ref, key).statusCode()).isEqualTo(500);
        assertThat(post("/later-shipments/" + ref, key).statusCode()).isEqualTo(500);
        // an async task handed to the executor would have run and committed by now
        Thread.sleep(1_000);
        assertThat(count("select count(*) from shipment where order_ref = ?", ref))
                .as("the async handler's write")
                .isZero();
        assertThat(count("select count(*) from outbox.idempotency_key where idem_key = ?", key))
                .isZero();
    }

    /**
     * A GET on a covered path that answers asynchronously (a {@code Callable}) is served: the filter's
     * registration supports async processing, and the filter lets a method it does not protect through
     * as it came. Before, the container refused async processing to every request on the filter's
     * paths, and such a GET (or an SSE stream, a {@code StreamingResponseBody}, a {@code
     * DeferredResult}) failed with 500.
     */
    @Test
    void anAsyncGetOnACoveredPathIsServed() throws Exception {
        String ref = "ref-" + UUID.randomUUID();
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/shipments/" + ref))
                .timeout(Duration.ofSeconds(30))
                .GET()
                .build();
        HttpResponse<String> answer = http.send(request, HttpResponse.BodyHandlers.ofString());
        assertThat(answer.statusCode()).isEqualTo(200);
        assertThat(answer.body()).isEqualTo("tracking " + ref);
    }

    /**
     * G5 with Spring's transaction synchronisations: a stored refusal (422) commits nothing that its
     * transaction's {@code @TransactionalEventListener}s write, and runs none of their after-commit
     * work: the request's transaction is rolled back, and the key is stored with the refusal in a
     * transaction of its own, then replayed. A 201 commits the listener's outbox message with the
     * entity. Before, the refused request's writes were rolled back to a savepoint and the transaction
     * then committed: the {@code BEFORE_COMMIT} listener's outbox message committed with the key (an
     * event published for a refused request), and the {@code AFTER_COMMIT} listener ran.
     */
    @Test
    void aStoredRefusalCommitsNothingOfItsTransactionalEventListeners() throws Exception {
        String refused = "ref-" + UUID.randomUUID();
        String key = UUID.randomUUID().toString();
        assertThat(post("/announced-shipments/" + refused + "?status=422", key).statusCode())
                .isEqualTo(422);
        HttpResponse<String> replay = post("/announced-shipments/" + refused + "?status=422", key);
        assertThat(replay.statusCode()).isEqualTo(422);
        assertThat(replay.headers().firstValue("Idempotent-Replayed")).hasValue("true");
        assertThat(count("select count(*) from outbox.outbox_message where message_key = ?", refused))
                .as("the BEFORE_COMMIT listener's outbox message for the refused request")
                .isZero();
        assertThat(count("select count(*) from shipment where order_ref = ?", refused))
                .isZero();
        assertThat(Announcer.COMMITTED).as("the AFTER_COMMIT listener's runs").doesNotContain(refused);
        assertThat(count("select count(*) from outbox.idempotency_key where idem_key = ?", key))
                .isOne();

        String created = "ref-" + UUID.randomUUID();
        assertThat(post(
                                "/announced-shipments/" + created + "?status=201",
                                UUID.randomUUID().toString())
                        .statusCode())
                .isEqualTo(201);
        assertThat(count("select count(*) from outbox.outbox_message where message_key = ?", created))
                .isOne();
        assertThat(count("select count(*) from shipment where order_ref = ?", created))
                .isOne();
        assertThat(Announcer.COMMITTED).contains(created);
    }

    /**
     * G5 through a {@code @Transactional} service that refuses by throwing, mapped to 422 by an
     * exception handler. Where Spring marks the request's transaction rollback-only, the transaction
     * cannot commit, so the refusal is stored in a transaction of its own (before, the client got 500
     * and every retry ran the service again); declared {@code noRollbackFor}, the transaction stays
     * usable and the refusal commits with the key. Either way it is replayed, and the service's
     * entity is not committed.
     */
    @ParameterizedTest
    @ValueSource(strings = {"/doomed-shipments/", "/refused-shipments/"})
    void aRefusalThrownThroughATransactionalServiceIsStoredAndReplayed(String path) throws Exception {
        String ref = "ref-" + UUID.randomUUID();
        assertRefusedAndReplayed(path + ref);
        assertThat(count("select count(*) from shipment where order_ref = ?", ref))
                .isZero();
    }

    /**
     * G5 with Spring Boot's error page: a handler that refuses with a {@code ResponseStatusException} (which Spring
     * MVC answers with {@code sendError}) gets Boot's JSON error page, as without the filter, and so does the
     * replay; the entity it persisted is not committed. Before, the filter answered the reason as text/plain.
     */
    @Test
    void aResponseStatusExceptionIsAnsweredByBootsErrorPageAndReplayed() throws Exception {
        String ref = "ref-" + UUID.randomUUID();
        String key = UUID.randomUUID().toString();
        HttpResponse<String> first = post("/rejected-shipments/" + ref, key);
        HttpResponse<String> replay = post("/rejected-shipments/" + ref, key);
        for (HttpResponse<String> answer : List.of(first, replay)) {
            assertThat(answer.statusCode()).isEqualTo(422);
            assertThat(answer.headers().firstValue("Content-Type"))
                    .hasValueSatisfying(type -> assertThat(type).startsWith("application/json"));
            assertThat(answer.body()).contains("\"status\":422").contains("\"path\":\"/rejected-shipments/" + ref);
        }
        assertThat(first.headers().firstValue("Idempotent-Replayed")).isEmpty();
        assertThat(replay.headers().firstValue("Idempotent-Replayed")).hasValue("true");
        assertThat(count("select count(*) from shipment where order_ref = ?", ref))
                .isZero();
        assertThat(count("select count(*) from outbox.idempotency_key where idem_key = ?", key))
                .isOne();
    }

    /** A 422 after persisting an entity JPA has not flushed yet: stored, replayed, and no row. */
    @Test
    void aStoredRefusalLeavesNoUnflushedEntityBehind() throws Exception {
        String ref = "ref-" + UUID.randomUUID();
        assertRefusedAndReplayed("/shipments/" + ref + "?status=422");
        assertThat(count("select count(*) from shipment where order_ref = ?", ref))
                .as("the refused request's entity, persisted but not flushed before the refusal, is not committed")
                .isZero();
    }

    /** A 422 after an update JPA holds as a dirty entity: the stored refusal leaves the row as it was. */
    @Test
    void aStoredRefusalLeavesNoDirtyEntityBehind() throws Exception {
        int before = count("select quantity from stock where sku = ?", "sku-1");
        assertThat(post("/stock/sku-1?status=422&amount=1", UUID.randomUUID().toString())
                        .statusCode())
                .isEqualTo(422);
        assertThat(count("select quantity from stock where sku = ?", "sku-1"))
                .as("the refused request's decrement, held by JPA as a dirty entity, is not committed")
                .isEqualTo(before);
    }

    /**
     * A 201 whose change JPA flushes only at commit, where the database refuses it: nothing is stored,
     * the client gets a 500 rather than the 201, and a retry with the key runs anew.
     */
    @Test
    void aSuccessWhoseFlushFailsAtCommitIsNotStored() throws Exception {
        String key = UUID.randomUUID().toString();
        HttpResponse<String> first = post("/stock/sku-2?status=201&amount=2", key);
        assertThat(first.statusCode()).isEqualTo(500);
        assertThat(count("select count(*) from outbox.idempotency_key where idem_key = ?", key))
                .isZero();
        HttpResponse<String> retry = post("/stock/sku-2?status=201&amount=2", key);
        assertThat(retry.statusCode()).isEqualTo(500);
        assertThat(retry.headers().firstValue("Idempotent-Replayed")).isEmpty();
        assertThat(count("select quantity from stock where sku = ?", "sku-2")).isEqualTo(1);
    }

    /** A 422 after an entity JPA inserted at once (IDENTITY): the savepoint takes the row away. */
    @Test
    void aStoredRefusalLeavesNoFlushedEntityBehind() throws Exception {
        String ref = "ref-" + UUID.randomUUID();
        assertThat(post("/parcels/" + ref + "?status=422", UUID.randomUUID().toString())
                        .statusCode())
                .isEqualTo(422);
        assertThat(count("select count(*) from parcel where order_ref = ?", ref))
                .isZero();
    }

    /** A 201 commits the entity once; its replay answers the same and writes nothing. */
    @Test
    void aSuccessCommitsTheEntityOnceAndItsReplayWritesNothing() throws Exception {
        String ref = "ref-" + UUID.randomUUID();
        String key = UUID.randomUUID().toString();
        assertThat(post("/shipments/" + ref + "?status=201", key).statusCode()).isEqualTo(201);
        HttpResponse<String> replay = post("/shipments/" + ref + "?status=201", key);
        assertThat(replay.statusCode()).isEqualTo(201);
        assertThat(replay.headers().firstValue("Idempotent-Replayed")).hasValue("true");
        assertThat(count("select count(*) from shipment where order_ref = ?", ref))
                .isEqualTo(1);
    }

    /**
     * G5 for a form-encoded PATCH in a default Spring Boot application: Boot's {@code FormContentFilter}
     * (order -9900, ahead of Spring Security and of this filter) reads the whole body of a PUT, PATCH or
     * DELETE form and exposes its fields as request parameters. Before, the filter found the body gone
     * and answered 500 to every such request; now the key covers the form's fields as the handler reads
     * them. The request runs once and its retry is replayed; the same key with other fields, or with the
     * fields the query string also carries moved into the body, is refused with 422 and runs nothing.
     */
    @Test
    void aFormPatchReadByBootsFormContentFilterRunsOnceAndIsFingerprintedByItsFields() throws Exception {
        String ref = "ref-" + UUID.randomUUID();
        String key = UUID.randomUUID().toString();
        String path = "/shipments/" + ref + "?carrier=dhl";
        String form = "label=fragile+%26+heavy&note=back%20door&note=ring";

        HttpResponse<String> first = patchForm(path, key, form);
        assertThat(first.statusCode()).isEqualTo(200);
        assertThat(first.body()).isEqualTo(ref + " carrier=[dhl] label=[fragile & heavy] note=[back door, ring]");
        assertThat(first.headers().firstValue("Idempotent-Replayed")).isEmpty();

        HttpResponse<String> replay = patchForm(path, key, form);
        assertThat(replay.statusCode()).isEqualTo(200);
        assertThat(replay.headers().firstValue("Idempotent-Replayed")).hasValue("true");
        assertThat(replay.body()).isEqualTo(first.body());

        // the same key with another value, another order of one field's values, a field the query string also
        // carries repeated in the body, or a query field moved into the body
        assertThat(patchForm(path, key, "label=fragile+%26+heavy&note=back%20door&note=knock")
                        .statusCode())
                .isEqualTo(422);
        assertThat(patchForm(path, key, "label=fragile+%26+heavy&note=ring&note=back%20door")
                        .statusCode())
                .isEqualTo(422);
        assertThat(patchForm(path, key, "carrier=dhl&" + form).statusCode()).isEqualTo(422);
        assertThat(patchForm("/shipments/" + ref, key, "carrier=dhl&" + form).statusCode())
                .isEqualTo(422);
        assertThat(count("select count(*) from shipment where order_ref = ?", ref))
                .as("the form's handler ran once")
                .isEqualTo(1);
    }

    /** G1, G2: the append commits with the entity, and a method that throws leaves neither. */
    @Test
    void anAppendCommitsAndRollsBackWithTheEntity() {
        String kept = "ref-" + UUID.randomUUID();
        UUID message = shipping.shipAndAnnounce(kept, false);
        assertThat(count("select count(*) from shipment where order_ref = ?", kept))
                .isEqualTo(1);
        assertThat(count("select count(*) from outbox.outbox_message where message_id = ?", message))
                .isEqualTo(1);

        String refused = "ref-" + UUID.randomUUID();
        assertThatThrownBy(() -> shipping.shipAndAnnounce(refused, true)).hasMessageContaining(refused);
        assertThat(count("select count(*) from shipment where order_ref = ?", refused))
                .isZero();
        assertThat(count("select count(*) from outbox.outbox_message where message_key = ?", refused))
                .isZero();
    }

    /**
     * G4: the claim rolls back with the entity when the method throws, so the redelivery applies the
     * message; once committed, a further delivery is skipped and the entity stays single.
     */
    @Test
    void aClaimCommitsAndRollsBackWithTheEntity() {
        UUID message = UUID.randomUUID();
        String ref = "ref-" + message;
        assertThatThrownBy(() -> shipping.shipOnce(message, ref, true)).hasMessageContaining(ref);
        assertThat(count("select count(*) from outbox.processed_message where message_id = ?", message))
                .isZero();
        assertThat(shipping.shipOnce(message, ref, false)).isTrue();
        assertThat(shipping.shipOnce(message, ref, false)).isFalse();
        assertThat(count("select count(*) from shipment where order_ref = ?", ref))
                .isEqualTo(1);
    }

    /** Posts {@code path} twice with one key: a 422, then the same 422 replayed from the store. */
    private void assertRefusedAndReplayed(String path) throws Exception {
        String key = UUID.randomUUID().toString();
        assertThat(post(path, key).statusCode()).isEqualTo(422);
        HttpResponse<String> replay = post(path, key);
        assertThat(replay.statusCode()).isEqualTo(422);
        assertThat(replay.headers().firstValue("Idempotent-Replayed")).hasValue("true");
    }

    private HttpResponse<String> post(String path, String key) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://localhost:" + port + path))
                .timeout(Duration.ofSeconds(30))
                .header("Idempotency-Key", "\"" + key + "\"")
                .POST(HttpRequest.BodyPublishers.noBody())
                .build();
        return http.send(request, HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> patchForm(String path, String key, String form) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://localhost:" + port + path))
                .timeout(Duration.ofSeconds(30))
                .header("Idempotency-Key", "\"" + key + "\"")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .method("PATCH", HttpRequest.BodyPublishers.ofString(form))
                .build();
        return http.send(request, HttpResponse.BodyHandlers.ofString());
    }

    private int count(String sql, Object arg) {
        Integer n = jdbc.queryForObject(sql, Integer.class, arg);
        return n == null ? 0 : n;
    }

    @SpringBootConfiguration
    @EnableAutoConfiguration
    @EntityScan(basePackageClasses = JpaApplicationIT.class)
    @Import({Shipping.class, ShippingController.class, Announcer.class})
    static class App {
        @Bean
        ScopeResolver idempotencyScope() {
            return ScopeResolver.principalOrAnonymous();
        }
    }

    @Entity
    @Table(name = "shipment")
    public static class Shipment {
        @Id
        @GeneratedValue(strategy = GenerationType.SEQUENCE, generator = "shipment")
        @SequenceGenerator(name = "shipment", sequenceName = "shipment_seq", allocationSize = 50)
        Long id;

        String orderRef;

        protected Shipment() {}

        Shipment(String orderRef) {
            this.orderRef = orderRef;
        }
    }

    @Entity
    @Table(name = "parcel")
    public static class Parcel {
        @Id
        @GeneratedValue(strategy = GenerationType.IDENTITY)
        Long id;

        String orderRef;

        protected Parcel() {}

        Parcel(String orderRef) {
            this.orderRef = orderRef;
        }
    }

    @Entity
    @Table(name = "stock")
    public static class Stock {
        @Id
        String sku;

        int quantity;

        protected Stock() {}
    }

    @Service
    static class Shipping {
        @PersistenceContext
        EntityManager em;

        @Autowired
        OutboxTemplate outbox;

        @Autowired
        ProcessedMessagesTemplate processed;

        @Autowired
        ApplicationEventPublisher events;

        /** Persists, and publishes an event its transaction's listeners handle. */
        @Transactional
        public void shipAndRequestAnnouncement(String ref) {
            em.persist(new Shipment(ref));
            events.publishEvent(new ShipmentRequested(ref));
        }

        @Transactional
        public UUID shipAndAnnounce(String ref, boolean fail) {
            em.persist(new Shipment(ref));
            UUID id = outbox.append(OutboxMessage.of(
                    "shipments", ref, "ShipmentCreated", "text/plain", ref.getBytes(StandardCharsets.UTF_8)));
            if (fail) {
                throw new IllegalStateException("no carrier for " + ref);
            }
            return id;
        }

        @Transactional
        public boolean shipOnce(UUID message, String ref, boolean fail) {
            if (!processed.claim("shipping", message)) {
                return false;
            }
            em.persist(new Shipment(ref));
            if (fail) {
                throw new IllegalStateException("no carrier for " + ref);
            }
            return true;
        }

        @Transactional
        public void ship(String ref) {
            em.persist(new Shipment(ref));
        }

        /** Refuses after persisting, without marking the request's transaction rollback-only. */
        @Transactional(noRollbackFor = NoCarrier.class)
        public void shipOrRefuse(String ref) {
            em.persist(new Shipment(ref));
            throw new NoCarrier(ref);
        }

        /** Refuses after persisting; the exception marks the request's transaction rollback-only. */
        @Transactional
        public void shipOrFail(String ref) {
            em.persist(new Shipment(ref));
            throw new NoCarrier(ref);
        }

        @Transactional
        public void pack(String ref) {
            em.persist(new Parcel(ref));
        }

        @Transactional
        public void take(String sku, int amount) {
            em.find(Stock.class, sku).quantity -= amount;
        }
    }

    /** A shipment was requested, in the transaction that persisted it. */
    record ShipmentRequested(String ref) {}

    /** Announces a shipment in the outbox as its transaction commits, and records the commits it saw. */
    static class Announcer {
        static final Set<String> COMMITTED = ConcurrentHashMap.newKeySet();

        @Autowired
        OutboxTemplate outbox;

        @TransactionalEventListener(phase = TransactionPhase.BEFORE_COMMIT)
        public void announce(ShipmentRequested requested) {
            outbox.append(OutboxMessage.of(
                    "shipments",
                    requested.ref(),
                    "ShipmentRequested",
                    "text/plain",
                    requested.ref().getBytes(StandardCharsets.UTF_8)));
        }

        @TransactionalEventListener(phase = TransactionPhase.AFTER_COMMIT)
        public void committed(ShipmentRequested requested) {
            COMMITTED.add(requested.ref());
        }
    }

    /** Each handler writes through JPA, then answers the status the test asks for. */
    @RestController
    static class ShippingController {
        private final Shipping shipping;

        ShippingController(Shipping shipping) {
            this.shipping = shipping;
        }

        @PostMapping("/shipments/{ref}")
        ResponseEntity<String> ship(@PathVariable("ref") String ref, @RequestParam("status") int status) {
            shipping.ship(ref);
            return ResponseEntity.status(status).body(ref);
        }

        /** Reads a form's fields, which Boot's {@code FormContentFilter} parsed from the PATCH body. */
        @PatchMapping(path = "/shipments/{ref}", consumes = MediaType.APPLICATION_FORM_URLENCODED_VALUE)
        ResponseEntity<String> relabel(@PathVariable("ref") String ref, HttpServletRequest request) {
            shipping.ship(ref);
            StringBuilder fields = new StringBuilder(ref);
            for (String name : List.of("carrier", "label", "note")) {
                String[] values = request.getParameterValues(name);
                fields.append(' ').append(name).append('=').append(values == null ? List.of() : Arrays.asList(values));
            }
            return ResponseEntity.ok(fields.toString());
        }

        /** Not protected (a GET), on a covered path, answered on another thread. */
        @GetMapping("/shipments/{ref}")
        Callable<ResponseEntity<String>> track(@PathVariable("ref") String ref) {
            return () -> ResponseEntity.ok("tracking " + ref);
        }

        @PostMapping("/announced-shipments/{ref}")
        ResponseEntity<String> shipAnnounced(@PathVariable("ref") String ref, @RequestParam("status") int status) {
            shipping.shipAndRequestAnnouncement(ref);
            return ResponseEntity.status(status).body(ref);
        }

        @PostMapping("/later-shipments/{ref}")
        Callable<ResponseEntity<String>> shipLater(@PathVariable("ref") String ref) {
            return () -> {
                shipping.ship(ref);
                return ResponseEntity.status(201).body(ref);
            };
        }

        @PostMapping("/rejected-shipments/{ref}")
        ResponseEntity<String> shipOrReject(@PathVariable("ref") String ref) {
            shipping.ship(ref);
            throw new ResponseStatusException(HttpStatus.UNPROCESSABLE_CONTENT, "no carrier for " + ref);
        }

        @PostMapping("/refused-shipments/{ref}")
        ResponseEntity<String> shipOrRefuse(@PathVariable("ref") String ref) {
            shipping.shipOrRefuse(ref);
            return ResponseEntity.status(201).body(ref);
        }

        @PostMapping("/doomed-shipments/{ref}")
        ResponseEntity<String> shipOrFail(@PathVariable("ref") String ref) {
            shipping.shipOrFail(ref);
            return ResponseEntity.status(201).body(ref);
        }

        @ExceptionHandler(NoCarrier.class)
        ResponseEntity<String> noCarrier(NoCarrier e) {
            return ResponseEntity.status(422).body(e.getMessage());
        }

        @PostMapping("/parcels/{ref}")
        ResponseEntity<String> pack(@PathVariable("ref") String ref, @RequestParam("status") int status) {
            shipping.pack(ref);
            return ResponseEntity.status(status).body(ref);
        }

        @PostMapping("/stock/{sku}")
        ResponseEntity<String> take(
                @PathVariable("sku") String sku,
                @RequestParam("status") int status,
                @RequestParam("amount") int amount) {
            shipping.take(sku, amount);
            return ResponseEntity.status(status).body(sku);
        }
    }

    /** A business refusal, mapped to 422. */
    static class NoCarrier extends RuntimeException {
        NoCarrier(String ref) {
            super("no carrier for " + ref);
        }
    }
}
