package dev.outbox.schemas;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Enumeration;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;
import org.apache.avro.AvroRuntimeException;
import org.apache.avro.Conversions;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityResult;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityType;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.data.TimeConversions;
import org.apache.avro.generic.GenericContainer;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DatumReader;
import org.apache.avro.io.DatumWriter;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Encodes and decodes message payloads in Avro single-object encoding, so that every payload
 * names its writer schema and no registry server is needed.
 *
 * <h2>Bytes layout</h2>
 * <pre>
 *   offset 0..1   marker C3 01
 *   offset 2..9   CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form,
 *                 8 bytes little-endian ({@link #fingerprint(Schema)})
 *   offset 10..   the record in Avro binary encoding, written with the writer schema
 * </pre>
 *
 * <h2>Reading</h2>
 * A payload is decoded by looking up its writer schema by fingerprint in this codec's registry,
 * then reading it with the caller's reader schema under Avro schema resolution, so data written
 * with an older version of a schema reads with the current one (fields added since then get their
 * defaults). The registry holds
 * <ul>
 *   <li>every schema listed in a {@value #SCHEMA_INDEX_RESOURCE} resource on the classpath (this
 *       module lists all current schemas and every kept older version; see {@link #create()}),</li>
 *   <li>every schema passed to {@link #register(Schema)},</li>
 *   <li>every schema this codec has {@linkplain #encode(GenericContainer) encoded} a record with,</li>
 *   <li>every reader schema it was asked to {@linkplain #decode(byte[], Class) decode} into: a payload written
 *       with the reader's own class (or schema) decodes with no index and no registration. Only payloads
 *       written with <em>another</em> version of the schema need that version registered.</li>
 * </ul>
 *
 * <h2>Errors</h2>
 * <ul>
 *   <li>bytes without the marker or shorter than the header: {@link IllegalArgumentException};</li>
 *   <li>writer fingerprint not registered: {@link UnknownSchemaException};</li>
 *   <li>reader schema cannot read the writer schema: {@link IncompatibleSchemaException};</li>
 *   <li>body does not match the writer schema (corrupt, truncated, trailing bytes), or a record
 *       that does not match its own schema on encode: {@link AvroCodecException}.</li>
 * </ul>
 *
 * <h2>Threads</h2>
 * Instances are thread-safe and meant to be shared. Datum writers are cached per record class or
 * schema, datum readers (with their resolving decoders) per (writer fingerprint, reader schema)
 * and per (writer fingerprint, reader class).
 */
public final class AvroCodec {

    private static final Logger log = LoggerFactory.getLogger(AvroCodec.class);

    /** Media type part of {@link #contentType(Schema)}. */
    public static final String MEDIA_TYPE = "application/vnd.apache.avro+binary";

    /**
     * Format of {@link #contentType(Schema)}: {@link String#format} arguments are the schema's full
     * name and {@link #fingerprintHex(long) the fingerprint in hex}.
     */
    public static final String CONTENT_TYPE_FORMAT = MEDIA_TYPE + "; schema=%s; fingerprint=%s";

    /**
     * Classpath resource listing packaged {@code .avsc} resources, one resource path per line
     * ({@code #} starts a comment line). Every copy on the classpath is read by {@link #create()}.
     */
    public static final String SCHEMA_INDEX_RESOURCE = "META-INF/outbox/avro-schemas.index";

    /** Resource folder of this module's current schemas (copied from {@code src/main/avro}). */
    public static final String CURRENT_RESOURCE_ROOT = "dev/outbox/schemas/current/";

    /** Resource folder of this module's kept older schema versions (copied from {@code src/main/avro-history}). */
    public static final String HISTORY_RESOURCE_ROOT = "dev/outbox/schemas/history/";

    /** Length of the single-object header: 2 marker bytes and the 8-byte fingerprint. */
    public static final int HEADER_LENGTH = 10;

    private static final byte MARKER_0 = (byte) 0xC3;
    private static final byte MARKER_1 = (byte) 0x01;
    private static final HexFormat HEX = HexFormat.of();

    /** Used to write generic records; knows the standard logical types, and raw values still work. */
    private static final GenericData GENERIC_WRITE_MODEL = genericWriteModel();

    private final ConcurrentHashMap<Long, Schema> schemas = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<Class<?>, Writer> specificWriters = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<Schema, Writer> genericWriters = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<SpecificReaderKey, Reading> specificReaders = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<GenericReaderKey, Reading> genericReaders = new ConcurrentHashMap<>();

    private AvroCodec() {}

    /**
     * A codec that knows every schema listed in the {@value #SCHEMA_INDEX_RESOURCE} resources
     * visible to this class's class loader: this module's current schemas and all their kept
     * older versions, plus those of any other jar that ships such an index.
     *
     * @throws IllegalStateException if an index lists a resource that is missing or unparseable
     */
    public static AvroCodec create() {
        return create(AvroCodec.class.getClassLoader());
    }

    /** Like {@link #create()}, reading the schema indexes through the given class loader. */
    public static AvroCodec create(ClassLoader classLoader) {
        Objects.requireNonNull(classLoader, "classLoader");
        AvroCodec codec = new AvroCodec();
        codec.registerClasspathSchemas(classLoader);
        return codec;
    }

    /** A codec that knows no schemas until they are {@linkplain #register(Schema) registered} or encoded with. */
    public static AvroCodec empty() {
        return new AvroCodec();
    }

    /**
     * Makes payloads written with {@code schema} decodable by this codec. Registering a schema
     * twice, or two schemas with the same Parsing Canonical Form, is harmless.
     *
     * @return this codec
     * @throws IllegalStateException if a schema with another canonical form but the same
     *                               fingerprint is already registered (a CRC-64 collision)
     */
    public AvroCodec register(Schema schema) {
        Objects.requireNonNull(schema, "schema");
        long fingerprint = fingerprint(schema);
        Schema existing = schemas.putIfAbsent(fingerprint, schema);
        if (existing != null
                && existing != schema
                && !SchemaNormalization.toParsingForm(existing).equals(SchemaNormalization.toParsingForm(schema))) {
            throw new IllegalStateException("fingerprint collision: " + schema.getFullName() + " and "
                    + existing.getFullName() + " both have CRC-64-AVRO fingerprint " + fingerprintHex(fingerprint));
        }
        return this;
    }

    /** The registered writer schema with this fingerprint, if any. */
    public Optional<Schema> schema(long fingerprint) {
        return Optional.ofNullable(schemas.get(fingerprint));
    }

    /** A snapshot of all registered schemas by fingerprint. */
    public Map<Long, Schema> registeredSchemas() {
        return Map.copyOf(schemas);
    }

    /**
     * Encodes a record (a generated {@link SpecificRecord} or any {@link GenericContainer}) as a
     * single-object payload with the record's own schema as writer schema, and registers that schema.
     *
     * @throws AvroCodecException if the record does not match its schema (e.g. a null in a non-null field)
     */
    public byte[] encode(GenericContainer record) {
        Objects.requireNonNull(record, "record");
        Writer writer = record instanceof SpecificRecord
                ? specificWriters.computeIfAbsent(
                        record.getClass(), type -> newWriter(record.getSchema(), SpecificData.getForClass(type)))
                : genericWriters.computeIfAbsent(record.getSchema(), schema -> newWriter(schema, GENERIC_WRITE_MODEL));
        return writer.write(record);
    }

    /**
     * Decodes a payload into an instance of a generated record class, resolving the writer schema
     * named in the payload and reading with the class's schema. The class's schema is registered
     * first, so payloads written with that same schema need no index or registration.
     *
     * @throws IllegalArgumentException     if the bytes are not single-object encoded
     * @throws UnknownSchemaException       if the writer schema is not registered
     * @throws IncompatibleSchemaException  if the class's schema cannot read the writer schema
     * @throws AvroCodecException           if the body does not match the writer schema
     */
    public <T extends SpecificRecord> T decode(byte[] bytes, Class<T> readerClass) {
        Objects.requireNonNull(readerClass, "readerClass");
        long fingerprint = fingerprintOf(bytes);
        Reading reading = specificReaders.get(new SpecificReaderKey(fingerprint, readerClass));
        if (reading == null) {
            reading = specificReaders.computeIfAbsent(new SpecificReaderKey(fingerprint, readerClass), key -> {
                SpecificData model = SpecificData.getForClass(readerClass);
                Schema readerSchema;
                try {
                    readerSchema = model.getSchema(readerClass);
                } catch (AvroRuntimeException e) {
                    throw new IllegalArgumentException(
                            readerClass.getName() + " is not a generated Avro record class", e);
                }
                // the reader's own schema is a writer schema too: a consumer in another service reads what a
                // producer wrote with the same class without shipping a schema index or registering anything
                register(readerSchema);
                Schema writerSchema = writerSchema(fingerprint, readerSchema.getFullName());
                return newReading(
                        writerSchema, readerSchema, new SpecificDatumReader<>(writerSchema, readerSchema, model));
            });
        }
        return readerClass.cast(reading.read(bytes));
    }

    /**
     * Decodes a payload into a {@link GenericRecord} shaped by {@code readerSchema}, resolving the
     * writer schema named in the payload. Values use Avro's generic representation (for example
     * {@link org.apache.avro.util.Utf8} strings and {@code long} timestamps).
     *
     * @throws IllegalArgumentException     if the bytes are not single-object encoded, or the reader schema is not a record
     * @throws UnknownSchemaException       if the writer schema is not registered
     * @throws IncompatibleSchemaException  if {@code readerSchema} cannot read the writer schema
     * @throws AvroCodecException           if the body does not match the writer schema
     */
    public GenericRecord decode(byte[] bytes, Schema readerSchema) {
        Objects.requireNonNull(readerSchema, "readerSchema");
        if (readerSchema.getType() != Schema.Type.RECORD) {
            throw new IllegalArgumentException("reader schema must be a record schema, got " + readerSchema.getType());
        }
        long fingerprint = fingerprintOf(bytes);
        GenericReaderKey cacheKey = new GenericReaderKey(fingerprint, readerSchema);
        Reading reading = genericReaders.get(cacheKey);
        if (reading == null) {
            reading = genericReaders.computeIfAbsent(cacheKey, key -> {
                register(readerSchema);
                Schema writerSchema = writerSchema(fingerprint, readerSchema.getFullName());
                return newReading(
                        writerSchema,
                        readerSchema,
                        new GenericDatumReader<>(writerSchema, readerSchema, GenericData.get()));
            });
        }
        return (GenericRecord) reading.read(bytes);
    }

    /**
     * The registered writer schema named by a payload's header.
     *
     * @throws IllegalArgumentException if the bytes are not single-object encoded
     * @throws UnknownSchemaException   if the writer schema is not registered
     */
    public Schema writerSchema(byte[] bytes) {
        return writerSchema(fingerprintOf(bytes), null);
    }

    /** The CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, as written in payload headers. */
    public static long fingerprint(Schema schema) {
        Objects.requireNonNull(schema, "schema");
        return SchemaNormalization.parsingFingerprint64(schema);
    }

    /**
     * A fingerprint as 16 lower-case hex digits of the unsigned 64-bit value, most significant
     * first (note: the payload header stores the same value little-endian, so a hex dump of the
     * header shows the bytes in reverse order).
     */
    public static String fingerprintHex(long fingerprint) {
        return HEX.toHexDigits(fingerprint);
    }

    /**
     * The content type of payloads written with {@code schema}, in the fixed format
     * <pre>application/vnd.apache.avro+binary; schema=&lt;full name&gt;; fingerprint=&lt;16 hex digits&gt;</pre>
     * for example {@code application/vnd.apache.avro+binary; schema=dev.outbox.schemas.orders.OrderPlaced;
     * fingerprint=1b2c...}; the fingerprint is formatted by {@link #fingerprintHex(long)}.
     */
    public static String contentType(Schema schema) {
        return String.format(CONTENT_TYPE_FORMAT, schema.getFullName(), fingerprintHex(fingerprint(schema)));
    }

    /** Whether the bytes start with the single-object marker and are long enough to hold the header. */
    public static boolean isSingleObjectEncoded(byte[] bytes) {
        return bytes != null && bytes.length >= HEADER_LENGTH && bytes[0] == MARKER_0 && bytes[1] == MARKER_1;
    }

    /**
     * The writer schema fingerprint from a payload's header.
     *
     * @throws IllegalArgumentException if the bytes are not single-object encoded
     */
    public static long fingerprintOf(byte[] bytes) {
        Objects.requireNonNull(bytes, "bytes");
        if (bytes.length < 2 || bytes[0] != MARKER_0 || bytes[1] != MARKER_1) {
            String found = bytes.length == 0
                    ? "an empty payload"
                    : bytes.length == 1
                            ? "a 1-byte payload"
                            : "bytes "
                                    + HEX.withUpperCase().formatHex(bytes, 0, 2).replaceAll("(..)(..)", "$1 $2");
            throw new IllegalArgumentException(
                    "not Avro single-object encoded (expected marker C3 01, found " + found + ")");
        }
        if (bytes.length < HEADER_LENGTH) {
            throw new IllegalArgumentException(
                    "not Avro single-object encoded (marker C3 01 present but the header is truncated: " + bytes.length
                            + " of " + HEADER_LENGTH + " bytes)");
        }
        return ByteBuffer.wrap(bytes, 2, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    private Schema writerSchema(long fingerprint, String readerName) {
        Schema schema = schemas.get(fingerprint);
        if (schema == null) {
            throw new UnknownSchemaException(fingerprint, readerName);
        }
        return schema;
    }

    private Writer newWriter(Schema schema, GenericData model) {
        register(schema);
        byte[] header = new byte[HEADER_LENGTH];
        header[0] = MARKER_0;
        header[1] = MARKER_1;
        ByteBuffer.wrap(header, 2, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(fingerprint(schema));
        DatumWriter<Object> datumWriter = model instanceof SpecificData specific
                ? new SpecificDatumWriter<>(schema, specific)
                : new GenericDatumWriter<>(schema, model);
        return new Writer(schema, header, datumWriter);
    }

    private static Reading newReading(Schema writerSchema, Schema readerSchema, DatumReader<?> datumReader) {
        SchemaCompatibilityResult result = SchemaCompatibility.checkReaderWriterCompatibility(
                        readerSchema, writerSchema)
                .getResult();
        String incompatibility = null;
        if (result.getCompatibility() == SchemaCompatibilityType.INCOMPATIBLE) {
            incompatibility = result.getIncompatibilities().stream()
                    .map(i -> i.getType() + " at " + i.getLocation() + ": " + i.getMessage())
                    .collect(Collectors.joining("; "));
        }
        return new Reading(writerSchema, readerSchema, datumReader, incompatibility);
    }

    private void registerClasspathSchemas(ClassLoader classLoader) {
        Enumeration<URL> indexes;
        try {
            indexes = classLoader.getResources(SCHEMA_INDEX_RESOURCE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + SCHEMA_INDEX_RESOURCE + " resources", e);
        }
        while (indexes.hasMoreElements()) {
            URL index = indexes.nextElement();
            int count = 0;
            try (BufferedReader reader =
                    new BufferedReader(new InputStreamReader(index.openStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                    String resource = line.strip();
                    if (resource.isEmpty() || resource.startsWith("#")) {
                        continue;
                    }
                    register(loadSchemaResource(classLoader, resource, index));
                    count++;
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read schema index " + index, e);
            }
            log.debug("registered {} Avro schemas from {}", count, index);
        }
    }

    private static Schema loadSchemaResource(ClassLoader classLoader, String resource, URL index) {
        try (InputStream in = classLoader.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException(
                        "schema index " + index + " lists " + resource + ", which is not on the classpath");
            }
            return new Schema.Parser().parse(in);
        } catch (IOException | RuntimeException e) {
            if (e instanceof IllegalStateException ise && ise.getCause() == null) {
                throw ise;
            }
            throw new IllegalStateException(
                    "cannot parse Avro schema resource " + resource + " listed in " + index + ": " + e.getMessage(), e);
        }
    }

    private static GenericData genericWriteModel() {
        GenericData model = new GenericData();
        model.addLogicalTypeConversion(new Conversions.DecimalConversion());
        model.addLogicalTypeConversion(new Conversions.UUIDConversion());
        model.addLogicalTypeConversion(new TimeConversions.DateConversion());
        model.addLogicalTypeConversion(new TimeConversions.TimeMillisConversion());
        model.addLogicalTypeConversion(new TimeConversions.TimeMicrosConversion());
        model.addLogicalTypeConversion(new TimeConversions.TimestampMillisConversion());
        model.addLogicalTypeConversion(new TimeConversions.TimestampMicrosConversion());
        model.addLogicalTypeConversion(new TimeConversions.LocalTimestampMillisConversion());
        model.addLogicalTypeConversion(new TimeConversions.LocalTimestampMicrosConversion());
        return model;
    }

    private record SpecificReaderKey(long writerFingerprint, Class<?> readerClass) {}

    private record GenericReaderKey(long writerFingerprint, Schema readerSchema) {}

    private record Writer(Schema schema, byte[] header, DatumWriter<Object> datumWriter) {

        byte[] write(Object datum) {
            ByteArrayOutputStream out = new ByteArrayOutputStream(128);
            out.writeBytes(header);
            BinaryEncoder encoder = EncoderFactory.get().directBinaryEncoder(out, null);
            try {
                datumWriter.write(datum, encoder);
                encoder.flush();
            } catch (IOException | RuntimeException e) {
                throw new AvroCodecException(
                        "cannot encode record as " + schema.getFullName() + " (the record does not match its schema): "
                                + e.getMessage(),
                        e);
            }
            return out.toByteArray();
        }
    }

    private record Reading(
            Schema writerSchema, Schema readerSchema, DatumReader<?> datumReader, String incompatibility) {

        Object read(byte[] bytes) {
            if (incompatibility != null) {
                throw new IncompatibleSchemaException(writerSchema, readerSchema, incompatibility);
            }
            BinaryDecoder decoder = body(bytes);
            Object value;
            try {
                value = datumReader.read(null, decoder);
                if (!decoder.isEnd()) {
                    throw new AvroCodecException(
                            "corrupt payload: bytes left over after reading a complete " + writerSchema.getFullName()
                                    + " (fingerprint " + fingerprintHex(fingerprint(writerSchema)) + ")");
                }
            } catch (AvroCodecException e) {
                throw e;
            } catch (IOException | RuntimeException e) {
                throw mismatch(e.toString(), e);
            } catch (OutOfMemoryError e) {
                // Avro allocates a string, bytes or array by the length the payload declares before it reads
                // them: a corrupt length fails the allocation on a small heap. Only a payload that does not
                // hold what it declares is refused as corrupt; otherwise the heap really is exhausted.
                String problem = problem(bytes);
                if (problem == null) {
                    throw e;
                }
                throw mismatch(
                        "it declares a length its " + (bytes.length - HEADER_LENGTH) + " bytes do not hold, which"
                                + " could not be allocated (" + problem + ")",
                        e);
            }
            return value;
        }

        private AvroCodecException mismatch(String detail, Throwable cause) {
            return new AvroCodecException(
                    "corrupt payload: body does not match writer schema " + writerSchema.getFullName()
                            + " (fingerprint " + fingerprintHex(fingerprint(writerSchema)) + "): " + detail,
                    cause);
        }

        /** @return a decoder of the payload's body, after the single-object header */
        private static BinaryDecoder body(byte[] bytes) {
            return DecoderFactory.get().binaryDecoder(bytes, HEADER_LENGTH, bytes.length - HEADER_LENGTH, null);
        }

        /**
         * Walks the body by the writer schema without allocating what it declares.
         *
         * @return null when the body holds exactly one value of the writer schema, else what is wrong
         */
        String problem(byte[] bytes) {
            BinaryDecoder decoder = body(bytes);
            try {
                GenericDatumReader.skip(writerSchema, decoder);
                return decoder.isEnd() ? null : "bytes left over";
            } catch (IOException | RuntimeException e) {
                return e.toString();
            }
        }
    }
}
