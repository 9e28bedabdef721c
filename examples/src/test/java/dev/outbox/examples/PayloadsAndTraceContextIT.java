package dev.outbox.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.OutboxMessage;
import dev.outbox.relay.Relay;
import dev.outbox.schemas.AvroCodec;
import dev.outbox.schemas.JsonCodec;
import dev.outbox.schemas.orders.OrderLine;
import dev.outbox.schemas.orders.OrderPlaced;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.opentelemetry.api.GlobalOpenTelemetry;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.TraceFlags;
import io.opentelemetry.api.trace.TraceState;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Producer, relay and consumer together, with the two payload formats and the trace context: a
 * JSON record and an Avro record appended inside an OpenTelemetry span reach a consumer in "another
 * service" (an Avro codec that knows no schema), decode with {@code Message.payload(Class)}, and the
 * consumer's handler runs in a span of the producer's trace, parented by the producer's span, with
 * the producer's {@code tracestate}.
 */
@ExtendWith(RealServices.class)
class PayloadsAndTraceContextIT {
    private static final Duration WAIT = Duration.ofSeconds(60);

    /** A JSON payload type: a plain record, no Avro. */
    record PaymentRequested(String orderId, long amountCents, String currency) {}

    private static final InMemorySpanExporter SPANS = InMemorySpanExporter.create();
    private static OpenTelemetrySdk openTelemetry;

    @BeforeAll
    static void openTelemetry() {
        GlobalOpenTelemetry.resetForTest();
        openTelemetry = OpenTelemetrySdk.builder()
                .setTracerProvider(SdkTracerProvider.builder()
                        .addSpanProcessor(SimpleSpanProcessor.create(SPANS))
                        .build())
                .buildAndRegisterGlobal();
    }

    @AfterAll
    static void closeOpenTelemetry() {
        openTelemetry.close();
        GlobalOpenTelemetry.resetForTest();
    }

    @Test
    void jsonAndAvroPayloadsCarryTheProducersTraceToTheHandler(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("payloads");
        kafka.createTopic(topic, 1);
        Outbox outbox = Outbox.builder().build();
        OrderPlaced order = OrderPlaced.newBuilder()
                .setOrderId("o-1")
                .setCustomerId("c-1")
                .setAmountCents(1250)
                .setCurrency("EUR")
                .setPlacedAt(Instant.ofEpochMilli(1_700_000_000_000L))
                .setLines(List.of(
                        OrderLine.newBuilder().setSku("sku-1").setQuantity(2).build()))
                .build();
        PaymentRequested payment = new PaymentRequested("o-1", 1250, "EUR");

        Tracer tracer = GlobalOpenTelemetry.getTracer("orders-service");
        Span request = tracer.spanBuilder("POST /orders")
                .setSpanKind(SpanKind.SERVER)
                .setParent(Context.root()
                        .with(Span.wrap(SpanContext.create(
                                "0af7651916cd43dd8448eb211c80319c",
                                "b7ad6b7169203331",
                                TraceFlags.getSampled(),
                                TraceState.builder().put("vendor", "abc").build()))))
                .startSpan();
        UUID jsonId;
        UUID avroId;
        try (Scope ignored = request.makeCurrent()) {
            UUID[] ids = new UUID[2];
            db.dsl().transaction(tx -> {
                ids[0] = outbox.appendJson(tx.dsl(), topic, "o-1", payment);
                ids[1] = outbox.append(tx.dsl(), topic, "o-1", order);
            });
            jsonId = ids[0];
            avroId = ids[1];
            // a tracestate without a traceparent belongs to no trace here: the span's pair replaces it
            UUID stateOnly = db.dsl()
                    .transactionResult(tx -> outbox.append(
                            tx.dsl(),
                            OutboxMessage.of(topic, "o-2", "Note", "text/plain", new byte[1])
                                    .withHeader(OutboxHeaders.TRACESTATE, "other=1")));
            try (Connection c = db.connect();
                    Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("select headers->>'traceparent', headers->>'tracestate' from "
                            + db.schema() + ".outbox_message where message_id = '" + stateOnly + "'")) {
                assertThat(rs.next()).isTrue();
                assertThat(rs.getString(1)).contains(request.getSpanContext().getTraceId());
                assertThat(rs.getString(2)).isEqualTo("vendor=abc");
                st.execute("delete from " + db.schema() + ".outbox_message where message_id = '" + stateOnly + "'");
            }
        } finally {
            request.end();
        }

        Map<UUID, Object> decoded = new ConcurrentHashMap<>();
        Map<UUID, Map<String, String>> headers = new ConcurrentHashMap<>();
        Map<UUID, Span> handlerSpans = new ConcurrentHashMap<>();
        try (Relay relay = Relay.builder()
                        .dataSource(db.newDataSource(4))
                        .instanceId("payloads")
                        .producerProperties(Map.of("bootstrap.servers", kafka.bootstrapServers()))
                        .idlePollInterval(Duration.ofMillis(100))
                        .meterRegistry(new SimpleMeterRegistry())
                        .build();
                IdempotentConsumer consumer = IdempotentConsumer.builder()
                        .kafkaProperties(
                                Map.of("bootstrap.servers", kafka.bootstrapServers(), "group.id", "payments-" + topic))
                        .topics(topic)
                        .consumerName("payments")
                        .dsl(db.dsl())
                        .codec(AvroCodec.empty()) // another service: no schema index, nothing registered
                        .meterRegistry(new SimpleMeterRegistry())
                        .handler((m, tx) -> {
                            headers.put(m.messageId(), m.headers());
                            handlerSpans.put(m.messageId(), Span.current());
                            decoded.put(
                                    m.messageId(),
                                    m.messageId().equals(jsonId)
                                            ? m.payload(PaymentRequested.class)
                                            : m.payload(OrderPlaced.class));
                        })
                        .build()) {
            relay.start();
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> assertThat(decoded).containsOnlyKeys(jsonId, avroId));
        }

        assertThat(decoded.get(jsonId)).isEqualTo(payment);
        assertThat(decoded.get(avroId)).isEqualTo(order);
        assertThat(headers.get(jsonId))
                .containsEntry(OutboxHeaders.CONTENT_TYPE, JsonCodec.MEDIA_TYPE)
                .containsEntry(OutboxHeaders.MESSAGE_TYPE, PaymentRequested.class.getName());
        assertThat(headers.get(avroId).get(OutboxHeaders.CONTENT_TYPE)).startsWith(AvroCodec.MEDIA_TYPE);
        for (UUID id : List.of(jsonId, avroId)) {
            assertThat(headers.get(id))
                    .containsEntry(
                            OutboxHeaders.TRACEPARENT,
                            "00-" + request.getSpanContext().getTraceId() + "-"
                                    + request.getSpanContext().getSpanId() + "-01")
                    .containsEntry(OutboxHeaders.TRACESTATE, "vendor=abc");
            assertThat(handlerSpans.get(id).getSpanContext().getTraceId())
                    .isEqualTo(request.getSpanContext().getTraceId());
        }
        List<SpanData> processed = SPANS.getFinishedSpanItems().stream()
                .filter(s -> s.getKind() == SpanKind.CONSUMER && s.getName().equals(topic + " process"))
                .toList();
        assertThat(processed).hasSize(2).allSatisfy(s -> {
            assertThat(s.getTraceId()).isEqualTo(request.getSpanContext().getTraceId());
            assertThat(s.getParentSpanId()).isEqualTo(request.getSpanContext().getSpanId());
            assertThat(s.getParentSpanContext().isRemote()).isTrue();
            assertThat(s.getSpanContext().getTraceState().get("vendor")).isEqualTo("abc");
            assertThat(s.getAttributes().asMap().values()).contains("payments", topic);
        });
    }
}
