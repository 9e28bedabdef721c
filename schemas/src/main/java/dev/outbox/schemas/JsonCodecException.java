package dev.outbox.schemas;

/**
 * A payload could not be written or read as JSON by {@link JsonCodec}. Retrying the same bytes
 * with the same type does not help: a consumer should treat it as a poison message.
 */
public class JsonCodecException extends RuntimeException {

    public JsonCodecException(String message, Throwable cause) {
        super(message, cause);
    }
}
