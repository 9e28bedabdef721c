package dev.outbox.schemas;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.schemas.orders.CancellationReason;
import dev.outbox.schemas.orders.OrderCancelled;
import dev.outbox.schemas.orders.OrderLine;
import dev.outbox.schemas.orders.OrderPlaced;
import dev.outbox.schemas.payments.PaymentCaptured;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumWriter;
import org.junit.jupiter.api.Test;

class AvroCodecTest {

    private static final String ORDER_PLACED_V1 =
            AvroCodec.HISTORY_RESOURCE_ROOT + "dev.outbox.schemas.orders.OrderPlaced/v1.avsc";
    private static final Instant AT = Instant.parse("2025-03-01T12:34:56.789Z");

    private final AvroCodec codec = AvroCodec.create();

    static OrderPlaced orderPlaced() {
        return OrderPlaced.newBuilder()
                .setOrderId("o-1")
                .setCustomerId("c-7")
                .setAmountCents(12_345L)
                .setCurrency("EUR")
                .setPlacedAt(AT)
                .setLines(List.of(new OrderLine("sku-1", 2), new OrderLine("sku-2", 1)))
                .setChannel("mobile")
                .build();
    }

    static PaymentCaptured paymentCaptured() {
        return PaymentCaptured.newBuilder()
                .setPaymentId("p-9")
                .setOrderId("o-1")
                .setAmountCents(12_345L)
                .setCurrency("EUR")
                .setCapturedAt(AT.plusSeconds(30))
                .build();
    }

    static OrderCancelled orderCancelled() {
        return OrderCancelled.newBuilder()
                .setOrderId("o-1")
                .setReason(CancellationReason.PAYMENT_FAILED)
                .setCancelledAt(AT.plusSeconds(60))
                .setNote("card declined")
                .build();
    }

    static Schema resourceSchema(String resource) throws IOException {
        try (InputStream in = AvroCodecTest.class.getClassLoader().getResourceAsStream(resource)) {
            assertThat(in).as(resource).isNotNull();
            return new Schema.Parser().parse(in);
        }
    }

    /** A v1 OrderPlaced record, as an old producer (before the channel field existed) wrote it. */
    static GenericRecord orderPlacedV1(Schema v1) {
        Schema lineSchema = v1.getField("lines").schema().getElementType();
        GenericRecord line = new GenericData.Record(lineSchema);
        line.put("sku", "sku-old");
        line.put("quantity", 3);
        GenericRecord record = new GenericData.Record(v1);
        record.put("orderId", "o-old");
        record.put("customerId", "c-old");
        record.put("amountCents", 999L);
        record.put("currency", "USD");
        record.put("placedAt", AT.toEpochMilli());
        record.put("lines", List.of(line));
        return record;
    }

    @Test
    void roundTripsOrderPlaced() {
        OrderPlaced original = orderPlaced();
        OrderPlaced decoded = codec.decode(codec.encode(original), OrderPlaced.class);
        assertThat(decoded).isEqualTo(original);
        assertThat(decoded.getPlacedAt()).isEqualTo(AT);
        assertThat(decoded.getLines()).extracting(OrderLine::getSku).containsExactly("sku-1", "sku-2");
    }

    /**
     * A consumer in another service knows no schema index and registers nothing: a payload written with the class
     * it reads into decodes, instead of failing with {@link UnknownSchemaException} (and being dead-lettered).
     */
    @Test
    void aReaderThatRegisteredNothingDecodesPayloadsWrittenWithItsOwnClass() {
        byte[] fromAnotherService = AvroCodec.empty().encode(orderPlaced());
        AvroCodec consumers = AvroCodec.empty();

        assertThat(consumers.decode(fromAnotherService, OrderPlaced.class)).isEqualTo(orderPlaced());
        assertThat(AvroCodec.empty()
                        .decode(fromAnotherService, OrderPlaced.getClassSchema())
                        .get("orderId")
                        .toString())
                .isEqualTo(orderPlaced().getOrderId());
        assertThat(consumers.registeredSchemas()).containsOnlyKeys(AvroCodec.fingerprint(OrderPlaced.getClassSchema()));
    }

    @Test
    void roundTripsPaymentCaptured() {
        PaymentCaptured original = paymentCaptured();
        assertThat(codec.decode(codec.encode(original), PaymentCaptured.class)).isEqualTo(original);
    }

    @Test
    void roundTripsOrderCancelledIncludingEnumAndNullableField() {
        OrderCancelled original = orderCancelled();
        assertThat(codec.decode(codec.encode(original), OrderCancelled.class)).isEqualTo(original);

        OrderCancelled withoutNote =
                OrderCancelled.newBuilder(original).setNote(null).build();
        assertThat(codec.decode(codec.encode(withoutNote), OrderCancelled.class).getNote())
                .isNull();
    }

    @Test
    void writesMarkerThenLittleEndianFingerprintThenBinaryBody() throws IOException {
        OrderPlaced record = orderPlaced();
        byte[] bytes = codec.encode(record);

        assertThat(bytes[0]).isEqualTo((byte) 0xC3);
        assertThat(bytes[1]).isEqualTo((byte) 0x01);
        long expectedFingerprint = SchemaNormalization.parsingFingerprint64(OrderPlaced.getClassSchema());
        assertThat(ByteBuffer.wrap(bytes, 2, 8).order(ByteOrder.LITTLE_ENDIAN).getLong())
                .isEqualTo(expectedFingerprint);
        assertThat(AvroCodec.fingerprint(OrderPlaced.getClassSchema())).isEqualTo(expectedFingerprint);
        assertThat(AvroCodec.fingerprintOf(bytes)).isEqualTo(expectedFingerprint);
        assertThat(AvroCodec.isSingleObjectEncoded(bytes)).isTrue();

        ByteArrayOutputStream body = new ByteArrayOutputStream();
        BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(body, null);
        new SpecificDatumWriter<OrderPlaced>(OrderPlaced.class).write(record, encoder);
        encoder.flush();
        assertThat(Arrays.copyOfRange(bytes, AvroCodec.HEADER_LENGTH, bytes.length))
                .isEqualTo(body.toByteArray());

        // identical to Avro's own single-object encoder
        assertThat(OrderPlaced.getEncoder().encode(record).array()).isEqualTo(bytes);
    }

    @Test
    void decodesGenericallyWithAReaderSchemaFromTheClasspath() throws IOException {
        Schema reader = resourceSchema(AvroCodec.CURRENT_RESOURCE_ROOT + "payments/PaymentCaptured.avsc");
        GenericRecord decoded = codec.decode(codec.encode(paymentCaptured()), reader);
        assertThat(decoded.get("paymentId")).hasToString("p-9");
        assertThat(decoded.get("amountCents")).isEqualTo(12_345L);
        assertThat(decoded.get("capturedAt")).isEqualTo(AT.plusSeconds(30).toEpochMilli());
    }

    @Test
    void encodesGenericRecordsAndDecodesThemAsSpecificClasses() {
        GenericRecord generic = new GenericData.Record(PaymentCaptured.getClassSchema());
        generic.put("paymentId", "p-1");
        generic.put("orderId", "o-1");
        generic.put("amountCents", 5L);
        generic.put("currency", "EUR");
        generic.put("capturedAt", AT);
        PaymentCaptured decoded = codec.decode(codec.encode(generic), PaymentCaptured.class);
        assertThat(decoded.getCapturedAt()).isEqualTo(AT);
        assertThat(decoded.getPaymentId()).isEqualTo("p-1");
    }

    @Test
    void readsDataWrittenWithTheOldVersionWithTheEvolvedReader() throws IOException {
        Schema v1 = resourceSchema(ORDER_PLACED_V1);
        assertThat(v1.getField("channel")).isNull();
        assertThat(AvroCodec.fingerprint(v1)).isNotEqualTo(AvroCodec.fingerprint(OrderPlaced.getClassSchema()));
        // an old producer with its own codec; the consumer's codec knows v1 only from the classpath
        byte[] oldPayload = AvroCodec.empty().encode(orderPlacedV1(v1));
        assertThat(codec.schema(AvroCodec.fingerprintOf(oldPayload))).isPresent();

        OrderPlaced decoded = codec.decode(oldPayload, OrderPlaced.class);

        assertThat(decoded.getChannel()).isEqualTo("web");
        assertThat(decoded.getOrderId()).isEqualTo("o-old");
        assertThat(decoded.getCustomerId()).isEqualTo("c-old");
        assertThat(decoded.getAmountCents()).isEqualTo(999L);
        assertThat(decoded.getCurrency()).isEqualTo("USD");
        assertThat(decoded.getPlacedAt()).isEqualTo(AT);
        assertThat(decoded.getLines()).containsExactly(new OrderLine("sku-old", 3));

        GenericRecord generic =
                codec.decode(oldPayload, resourceSchema(AvroCodec.CURRENT_RESOURCE_ROOT + "orders/OrderPlaced.avsc"));
        assertThat(generic.get("channel")).hasToString("web");
        assertThat(codec.writerSchema(oldPayload).getField("channel")).isNull();
    }

    @Test
    void registersAllCurrentAndHistorySchemasFromTheClasspath() throws IOException {
        assertThat(codec.registeredSchemas())
                .containsKeys(
                        AvroCodec.fingerprint(OrderPlaced.getClassSchema()),
                        AvroCodec.fingerprint(OrderCancelled.getClassSchema()),
                        AvroCodec.fingerprint(PaymentCaptured.getClassSchema()),
                        AvroCodec.fingerprint(resourceSchema(ORDER_PLACED_V1)));
        assertThat(AvroCodec.empty().registeredSchemas()).isEmpty();
    }

    @Test
    void unknownFingerprintNamesItInHexAndSaysHowToFixIt() throws IOException {
        Schema v1 = resourceSchema(ORDER_PLACED_V1);
        byte[] oldPayload = AvroCodec.empty().encode(orderPlacedV1(v1));
        AvroCodec bare = AvroCodec.empty();
        String hex = AvroCodec.fingerprintHex(AvroCodec.fingerprint(v1));

        assertThatThrownBy(() -> bare.decode(oldPayload, OrderPlaced.class))
                .isInstanceOf(UnknownSchemaException.class)
                .hasMessageContaining(hex)
                .hasMessageContaining("register the writer schema")
                .hasMessageContaining("classpath")
                .satisfies(e ->
                        assertThat(((UnknownSchemaException) e).fingerprint()).isEqualTo(AvroCodec.fingerprint(v1)));
        assertThatThrownBy(() -> bare.decode(oldPayload, OrderPlaced.getClassSchema()))
                .isInstanceOf(UnknownSchemaException.class);
        assertThatThrownBy(() -> bare.writerSchema(oldPayload)).isInstanceOf(UnknownSchemaException.class);

        bare.register(v1);
        assertThat(bare.decode(oldPayload, OrderPlaced.class).getChannel()).isEqualTo("web");
    }

    @Test
    void rejectsBytesThatAreNotSingleObjectEncoded() throws IOException {
        ByteArrayOutputStream plainBinary = new ByteArrayOutputStream();
        BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(plainBinary, null);
        new SpecificDatumWriter<PaymentCaptured>(PaymentCaptured.class).write(paymentCaptured(), encoder);
        encoder.flush();

        for (byte[] bytes : List.of(
                plainBinary.toByteArray(),
                new byte[0],
                new byte[] {(byte) 0xC3},
                "{\"json\":true}".getBytes(StandardCharsets.UTF_8))) {
            assertThatThrownBy(() -> codec.decode(bytes, PaymentCaptured.class))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("not Avro single-object encoded (expected marker C3 01");
            assertThat(AvroCodec.isSingleObjectEncoded(bytes)).isFalse();
        }
        assertThatThrownBy(() -> codec.decode(new byte[] {(byte) 0xC3, 0x01, 1, 2}, PaymentCaptured.getClassSchema()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("not Avro single-object encoded")
                .hasMessageContaining("truncated");
    }

    @Test
    void rejectsCorruptBodies() {
        byte[] bytes = codec.encode(orderPlaced());
        byte[] truncated = Arrays.copyOf(bytes, bytes.length - 5);
        byte[] trailing = Arrays.copyOf(bytes, bytes.length + 3);

        assertThatThrownBy(() -> codec.decode(truncated, OrderPlaced.class))
                .isInstanceOf(AvroCodecException.class)
                .hasMessageContaining("corrupt payload")
                .hasMessageContaining("dev.outbox.schemas.orders.OrderPlaced");
        assertThatThrownBy(() -> codec.decode(trailing, OrderPlaced.class))
                .isInstanceOf(AvroCodecException.class)
                .hasMessageContaining("left over");
    }

    /**
     * A body whose first string declares 1.9 GB, more than this test JVM's heap (1 GB) can allocate:
     * Avro allocates by the declared length before reading, and the codec refuses the payload as
     * corrupt, because its bytes do not hold that length. Before, the OutOfMemoryError left the codec
     * and a consumer retried the record as an infrastructure failure for ever.
     */
    @Test
    void aDeclaredLengthTheHeapCannotHoldIsACorruptPayload() throws IOException {
        byte[] valid = codec.encode(orderPlaced());
        ByteArrayOutputStream corrupt = new ByteArrayOutputStream();
        corrupt.write(valid, 0, 10); // the single-object header: marker and fingerprint
        BinaryEncoder encoder = EncoderFactory.get().directBinaryEncoder(corrupt, null);
        encoder.writeInt(1_900_000_000); // the orderId's length
        encoder.flush();
        corrupt.write(new byte[] {'o', '-', '1'});
        assertThatThrownBy(() -> codec.decode(corrupt.toByteArray(), OrderPlaced.class))
                .isInstanceOf(AvroCodecException.class)
                .hasMessageContaining("corrupt payload")
                .hasMessageContaining("dev.outbox.schemas.orders.OrderPlaced");
    }

    @Test
    void incompatibleReaderNamesBothSchemas() {
        byte[] payment = codec.encode(paymentCaptured());
        assertThatThrownBy(() -> codec.decode(payment, OrderPlaced.class))
                .isInstanceOf(IncompatibleSchemaException.class)
                .hasMessageContaining("dev.outbox.schemas.orders.OrderPlaced")
                .hasMessageContaining("dev.outbox.schemas.payments.PaymentCaptured");

        Schema stricter = new Schema.Parser().parse("""
                {"type": "record", "name": "PaymentCaptured", "namespace": "dev.outbox.schemas.payments",
                 "fields": [{"name": "paymentId", "type": "string"}, {"name": "refundedAt", "type": "long"}]}
                """);
        assertThatThrownBy(() -> codec.decode(payment, stricter))
                .isInstanceOf(IncompatibleSchemaException.class)
                .hasMessageContaining("READER_FIELD_MISSING_DEFAULT_VALUE")
                .hasMessageContaining("refundedAt")
                .satisfies(e -> {
                    IncompatibleSchemaException ise = (IncompatibleSchemaException) e;
                    assertThat(ise.readerSchema()).isSameAs(stricter);
                    assertThat(AvroCodec.fingerprint(ise.writerSchema())).isEqualTo(AvroCodec.fingerprintOf(payment));
                });
        // a cached failure fails the same way again
        assertThatThrownBy(() -> codec.decode(payment, stricter)).isInstanceOf(IncompatibleSchemaException.class);
    }

    @Test
    void encodingARecordThatViolatesItsSchemaFails() {
        OrderPlaced broken = orderPlaced();
        broken.setCurrency(null);
        assertThatThrownBy(() -> codec.encode(broken))
                .isInstanceOf(AvroCodecException.class)
                .hasMessageContaining("dev.outbox.schemas.orders.OrderPlaced");
    }

    @Test
    void contentTypeHasTheDocumentedFormat() {
        Schema schema = OrderPlaced.getClassSchema();
        String hex = String.format("%016x", SchemaNormalization.parsingFingerprint64(schema));
        assertThat(AvroCodec.contentType(schema))
                .isEqualTo(
                        "application/vnd.apache.avro+binary; schema=dev.outbox.schemas.orders.OrderPlaced; fingerprint="
                                + hex);
        assertThat(AvroCodec.fingerprintHex(AvroCodec.fingerprint(schema)))
                .isEqualTo(hex)
                .hasSize(16);
        assertThat(AvroCodec.contentType(schema))
                .isEqualTo(String.format(AvroCodec.CONTENT_TYPE_FORMAT, schema.getFullName(), hex));
        assertThat(AvroCodec.fingerprintHex(1L)).isEqualTo("0000000000000001");
        assertThat(AvroCodec.fingerprintHex(-1L)).isEqualTo("ffffffffffffffff");
    }

    @Test
    void registeringIsIdempotentAndAcceptsEquivalentSchemas() throws IOException {
        AvroCodec own = AvroCodec.empty();
        Schema fromFile = resourceSchema(AvroCodec.CURRENT_RESOURCE_ROOT + "orders/OrderPlaced.avsc");
        own.register(OrderPlaced.getClassSchema())
                .register(OrderPlaced.getClassSchema())
                .register(fromFile);
        assertThat(own.registeredSchemas()).hasSize(1);
        assertThat(own.decode(codec.encode(orderPlaced()), OrderPlaced.class)).isEqualTo(orderPlaced());
    }

    @Test
    void isSafeToShareBetweenThreads() throws Exception {
        AvroCodec shared = AvroCodec.create();
        byte[] oldPayload = AvroCodec.empty().encode(orderPlacedV1(resourceSchema(ORDER_PLACED_V1)));
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Callable<Boolean>> tasks = new ArrayList<>();
            for (int t = 0; t < 16; t++) {
                int seed = t;
                tasks.add(() -> {
                    for (int i = 0; i < 300; i++) {
                        OrderPlaced order = OrderPlaced.newBuilder(orderPlaced())
                                .setOrderId("o-" + seed + "-" + i)
                                .build();
                        if (!shared.decode(shared.encode(order), OrderPlaced.class)
                                .equals(order)) {
                            return false;
                        }
                        if (!shared.decode(oldPayload, OrderPlaced.class)
                                .getChannel()
                                .equals("web")) {
                            return false;
                        }
                        if (!shared.decode(shared.encode(paymentCaptured()), PaymentCaptured.class)
                                .equals(paymentCaptured())) {
                            return false;
                        }
                    }
                    return true;
                });
            }
            for (Future<Boolean> result : pool.invokeAll(tasks)) {
                assertThat(result.get()).isTrue();
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
