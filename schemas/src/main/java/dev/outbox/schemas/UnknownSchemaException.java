package dev.outbox.schemas;

/**
 * A payload names a writer schema (by its CRC-64-AVRO fingerprint) that the codec does not know.
 *
 * <p>Fix: register the writer schema with {@link AvroCodec#register(org.apache.avro.Schema)},
 * or put the jar that packages its {@code .avsc} (with a schema index) on the classpath.
 */
public final class UnknownSchemaException extends AvroCodecException {

    private final long fingerprint;

    public UnknownSchemaException(long fingerprint, String readerName) {
        super("unknown Avro writer schema: no schema with CRC-64-AVRO fingerprint "
                + AvroCodec.fingerprintHex(fingerprint) + " is registered"
                + (readerName == null ? "" : " (while reading as " + readerName + ")")
                + "; register the writer schema with AvroCodec.register(Schema) or add its .avsc to the classpath"
                + " (listed in " + AvroCodec.SCHEMA_INDEX_RESOURCE + ")");
        this.fingerprint = fingerprint;
    }

    /** The writer schema fingerprint found in the payload. */
    public long fingerprint() {
        return fingerprint;
    }
}
