package dev.outbox.relay.admin;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * How {@code outbox-schema} reads V6's stored {@code vacuum_truncate}: PostgreSQL keeps a storage
 * parameter as written, and accepts for false {@code false}, {@code off}, {@code no}, {@code 0} and the
 * unambiguous prefixes of the words, in any case.
 */
class SchemaCheckTest {

    @ParameterizedTest
    @ValueSource(strings = {"false", "FALSE", "f", "fal", "off", "Off", "of", "no", "n", "0"})
    void falseInEverySpellingPostgresqlKeeps(String value) {
        assertThat(SchemaCheck.isFalse(value)).isTrue();
    }

    @ParameterizedTest
    @ValueSource(strings = {"true", "t", "on", "yes", "1", "o", "", "falsey", "00"})
    void anythingElseIsNotFalse(String value) {
        assertThat(SchemaCheck.isFalse(value)).isFalse();
    }
}
