package dev.outbox.schemas.compat;

import java.nio.file.Path;
import java.util.Objects;

/**
 * One problem found by {@link CompatibilityCheck}.
 *
 * @param kind              what is wrong
 * @param file              the file at fault: the current schema for {@link Kind#INCOMPATIBLE} and
 *                          {@link Kind#DUPLICATE_NAME}, otherwise the file or history folder concerned
 * @param schemaName        full name of the schema concerned, or {@code null} if the file could not be parsed
 * @param olderVersion      for {@link Kind#INCOMPATIBLE}: the kept older version the current schema cannot read; else {@code null}
 * @param incompatibility   for {@link Kind#INCOMPATIBLE}: Avro's incompatibility type (e.g. {@code READER_FIELD_MISSING_DEFAULT_VALUE}); else {@code null}
 * @param location          for {@link Kind#INCOMPATIBLE}: JSON pointer into the current schema, with the field path in parentheses when known; else {@code null}
 * @param detail            what exactly is wrong
 * @param fix               how to fix it
 */
public record Problem(
        Kind kind,
        Path file,
        String schemaName,
        Path olderVersion,
        String incompatibility,
        String location,
        String detail,
        String fix) {

    /** The kinds of problems. */
    public enum Kind {
        /** An {@code .avsc} file is not a valid, self-contained Avro schema. */
        UNPARSEABLE,
        /** The current schema cannot read data written by a kept older version. */
        INCOMPATIBLE,
        /** A history file holds a schema with another full name than its folder (and the current schema's aliases). */
        NAME_MISMATCH,
        /** Two current files define a schema with the same full name. */
        DUPLICATE_NAME,
        /** A history folder has no current schema with that full name. */
        NO_CURRENT_SCHEMA,
        /** A history file is not at {@code <history>/<FullName>/v<N>.avsc}. */
        BAD_HISTORY_LAYOUT
    }

    public Problem {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(detail, "detail");
        Objects.requireNonNull(fix, "fix");
    }

    /** One human-readable line: kind, file, schema, incompatibility and location, detail and fix. */
    public String message() {
        StringBuilder text =
                new StringBuilder().append('[').append(kind).append("] ").append(file);
        if (schemaName != null) {
            text.append(": schema ").append(schemaName);
        }
        if (kind == Kind.INCOMPATIBLE) {
            text.append(" cannot read data written by its kept older version ")
                    .append(olderVersion)
                    .append(": ")
                    .append(incompatibility)
                    .append(" at ")
                    .append(location);
        }
        text.append(": ").append(detail);
        text.append(". Fix: ").append(fix);
        return text.toString();
    }

    @Override
    public String toString() {
        return message();
    }
}
