package dev.outbox.schemas;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.util.Locale;
import java.util.Objects;

/**
 * Encodes and decodes JSON payloads with Jackson: the format for services that exchange plain Java
 * types (records, POJOs) rather than Avro classes.
 *
 * <p>The content type of JSON payloads is {@value #MEDIA_TYPE}; the relay publishes it in the
 * {@code content-type} header, and a consumer's {@code Message.payload(Class)} picks this codec
 * when it sees it. The message type (header {@code outbox-message-type}) names the Java type the
 * producer wrote, by default its full class name; readers may use any type with the same JSON
 * shape.
 *
 * <p>The {@linkplain #create() default mapper} ignores properties the reader's type does not know,
 * so a producer may add fields before its consumers read them: the same evolution rule as Avro's
 * (add fields freely, remove only what no reader still needs). Dates, {@code Optional} and other
 * types that need a Jackson module need {@link #using(ObjectMapper)} with a mapper that has the
 * module registered.
 *
 * <p>Jackson ({@code com.fasterxml.jackson.core:jackson-databind}) is an optional dependency of
 * this module; Avro brings it, so it is on the class path whenever the outbox is. Thread-safe.
 */
public final class JsonCodec {

    /** The content type of JSON payloads. */
    public static final String MEDIA_TYPE = "application/json";

    private static final JsonCodec DEFAULT = new JsonCodec(JsonMapper.builder()
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build());

    private final ObjectMapper mapper;

    private JsonCodec(ObjectMapper mapper) {
        this.mapper = mapper;
    }

    /**
     * @return the shared codec on a plain {@link JsonMapper} that ignores unknown properties when
     *     reading
     */
    public static JsonCodec create() {
        return DEFAULT;
    }

    /**
     * @param mapper the mapper to encode and decode with (for example with {@code JavaTimeModule}
     *     registered); it must not be reconfigured afterwards
     * @return a codec on that mapper
     * @throws NullPointerException when mapper is null
     */
    public static JsonCodec using(ObjectMapper mapper) {
        return new JsonCodec(Objects.requireNonNull(mapper, "mapper may not be null"));
    }

    /**
     * @param contentType a content type, or null
     * @return whether it is {@value #MEDIA_TYPE} (parameters such as {@code charset} allowed)
     */
    public static boolean isJson(String contentType) {
        if (contentType == null) {
            return false;
        }
        int parameters = contentType.indexOf(';');
        String media = (parameters < 0 ? contentType : contentType.substring(0, parameters)).strip();
        return media.toLowerCase(Locale.ROOT).equals(MEDIA_TYPE);
    }

    /**
     * @param value the value to write
     * @return its JSON, UTF-8
     * @throws NullPointerException when value is null (publish a tombstone with a null payload instead)
     * @throws JsonCodecException when Jackson cannot write it
     */
    public byte[] encode(Object value) {
        Objects.requireNonNull(value, "value may not be null; a tombstone is a message with a null payload");
        try {
            return mapper.writeValueAsBytes(value);
        } catch (JsonProcessingException e) {
            throw new JsonCodecException(
                    "cannot write " + value.getClass().getName() + " as JSON: " + e.getOriginalMessage(), e);
        }
    }

    /**
     * @param bytes JSON, UTF-8
     * @param type the type to read into
     * @param <T> the type
     * @return the value
     * @throws NullPointerException when bytes or type is null
     * @throws JsonCodecException when the bytes are not JSON or do not fit {@code type}; retrying
     *     the same bytes does not help
     */
    public <T> T decode(byte[] bytes, Class<T> type) {
        Objects.requireNonNull(bytes, "bytes may not be null");
        Objects.requireNonNull(type, "type may not be null");
        try {
            return mapper.readValue(bytes, type);
        } catch (IOException e) {
            String reason = e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.getMessage();
            throw new JsonCodecException("cannot read the JSON payload as " + type.getName() + ": " + reason, e);
        }
    }
}
