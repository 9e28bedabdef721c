package dev.outbox.schemas;

/**
 * A payload could not be encoded or decoded by {@link AvroCodec}.
 *
 * <p>Thrown as is when a payload's body does not match the writer schema its header names
 * (truncated, corrupt or trailing bytes). The subclasses {@link UnknownSchemaException} and
 * {@link IncompatibleSchemaException} describe the two schema-level failures. None of these
 * go away by retrying the same bytes with the same codec: a consumer should treat them as a
 * poison message (after registering a missing schema, the same bytes do decode).
 */
public class AvroCodecException extends RuntimeException {

    public AvroCodecException(String message) {
        super(message);
    }

    public AvroCodecException(String message, Throwable cause) {
        super(message, cause);
    }
}
