package dev.outbox.schemas;

import org.apache.avro.Schema;

/**
 * The reader schema cannot read data written with the payload's writer schema under Avro's
 * schema resolution rules (for example a reader field without default that the writer lacks,
 * or a field whose type changed incompatibly).
 */
public final class IncompatibleSchemaException extends AvroCodecException {

    private final transient Schema writerSchema;
    private final transient Schema readerSchema;

    public IncompatibleSchemaException(Schema writerSchema, Schema readerSchema, String incompatibilities) {
        super("reader schema " + describe(readerSchema) + " cannot read data written with writer schema "
                + describe(writerSchema) + ": " + incompatibilities);
        this.writerSchema = writerSchema;
        this.readerSchema = readerSchema;
    }

    private static String describe(Schema schema) {
        return schema.getFullName() + " (fingerprint " + AvroCodec.fingerprintHex(AvroCodec.fingerprint(schema)) + ")";
    }

    /** The schema the payload was written with. */
    public Schema writerSchema() {
        return writerSchema;
    }

    /** The schema the caller asked to read with. */
    public Schema readerSchema() {
        return readerSchema;
    }
}
