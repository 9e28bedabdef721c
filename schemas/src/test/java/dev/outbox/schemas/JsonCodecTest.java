package dev.outbox.schemas;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.json.JsonMapper;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class JsonCodecTest {

    record Line(String sku, int quantity) {}

    record OrderPlaced(String orderId, long amountCents, List<Line> lines) {}

    /** What a consumer that has not caught up with the producer's newest field reads into. */
    record OrderPlacedV1(String orderId, long amountCents) {}

    private final JsonCodec codec = JsonCodec.create();

    @Test
    void roundTripsARecord() {
        OrderPlaced order = new OrderPlaced("o-1", 1250, List.of(new Line("sku-1", 2)));

        byte[] bytes = codec.encode(order);

        assertThat(new String(bytes, StandardCharsets.UTF_8))
                .isEqualTo("{\"orderId\":\"o-1\",\"amountCents\":1250,\"lines\":[{\"sku\":\"sku-1\",\"quantity\":2}]}");
        assertThat(codec.decode(bytes, OrderPlaced.class)).isEqualTo(order);
    }

    @Test
    void aReaderIgnoresFieldsItDoesNotKnow() {
        byte[] bytes = codec.encode(new OrderPlaced("o-1", 1250, List.of()));

        assertThat(codec.decode(bytes, OrderPlacedV1.class)).isEqualTo(new OrderPlacedV1("o-1", 1250));
    }

    @Test
    void aStrictMapperCanBeUsed() {
        JsonCodec strict = JsonCodec.using(JsonMapper.builder().build());
        byte[] bytes = strict.encode(new OrderPlaced("o-1", 1250, List.of()));

        assertThatThrownBy(() -> strict.decode(bytes, OrderPlacedV1.class))
                .isInstanceOf(JsonCodecException.class)
                .hasMessageContaining("as " + OrderPlacedV1.class.getName())
                .hasMessageContaining("lines");
    }

    @Test
    void bytesThatAreNotJsonNameTheType() {
        assertThatThrownBy(() -> codec.decode(new byte[] {(byte) 0xC3, 0x01, 0, 0}, OrderPlaced.class))
                .isInstanceOf(JsonCodecException.class)
                .hasMessageStartingWith("cannot read the JSON payload as " + OrderPlaced.class.getName());
    }

    @Test
    void recognisesTheContentType() {
        assertThat(JsonCodec.isJson("application/json")).isTrue();
        assertThat(JsonCodec.isJson("Application/JSON; charset=utf-8")).isTrue();
        assertThat(JsonCodec.isJson("application/vnd.apache.avro+binary; schema=x; fingerprint=00"))
                .isFalse();
        assertThat(JsonCodec.isJson(null)).isFalse();
    }

    @Test
    void nullIsNotAPayload() {
        assertThatThrownBy(() -> codec.encode(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("tombstone");
    }
}
