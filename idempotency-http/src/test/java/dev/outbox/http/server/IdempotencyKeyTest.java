package dev.outbox.http.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class IdempotencyKeyTest {

    @Test
    void acceptsQuotedSfStringsAndBareTokensAsTheSameKey() {
        assertThat(IdempotencyKey.parse("\"8e03978e-40d5-43e8-bc93-6894a57f9324\""))
                .isEqualTo("8e03978e-40d5-43e8-bc93-6894a57f9324");
        assertThat(IdempotencyKey.parse("8e03978e-40d5-43e8-bc93-6894a57f9324"))
                .isEqualTo("8e03978e-40d5-43e8-bc93-6894a57f9324");
        assertThat(IdempotencyKey.parse("  abc  ")).isEqualTo("abc");
        assertThat(IdempotencyKey.parse("\"with space and \\\"quote\\\" and \\\\\""))
                .isEqualTo("with space and \"quote\" and \\");
    }

    @Test
    void quoteRoundTrips() {
        for (String key : new String[] {"a", "with \"quotes\"", "back\\slash", "x".repeat(255)}) {
            assertThat(IdempotencyKey.parse(IdempotencyKey.quote(key))).isEqualTo(key);
        }
    }

    @Test
    void rejectsEmptyTooLongAndNonVisibleAscii() {
        assertThatThrownBy(() -> IdempotencyKey.parse(""))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("empty");
        assertThatThrownBy(() -> IdempotencyKey.parse("   ")).hasMessageContaining("empty");
        assertThatThrownBy(() -> IdempotencyKey.parse("\"\"")).hasMessageContaining("empty string");
        assertThat(IdempotencyKey.parse("k".repeat(255))).hasSize(255);
        assertThatThrownBy(() -> IdempotencyKey.parse("k".repeat(256)))
                .hasMessageContaining("256 characters long; the limit is 255");
        assertThatThrownBy(() -> IdempotencyKey.parse("\"" + "k".repeat(256) + "\""))
                .hasMessageContaining("limit is 255");
        assertThatThrownBy(() -> IdempotencyKey.parse("abc def"))
                .hasMessageContaining("U+0020")
                .hasMessageContaining("position 4");
        assertThatThrownBy(() -> IdempotencyKey.parse("schlüssel")).hasMessageContaining("U+00FC");
        assertThatThrownBy(() -> IdempotencyKey.parse("\"tab\there\"")).hasMessageContaining("U+0009");
        assertThatThrownBy(() -> IdempotencyKey.parse("\"unterminated")).hasMessageContaining("no closing quote");
        assertThatThrownBy(() -> IdempotencyKey.parse("\"a\";p=1")).hasMessageContaining("after its closing quote");
        assertThatThrownBy(() -> IdempotencyKey.parse("\"bad\\escape\"")).hasMessageContaining("backslash");
        assertThatThrownBy(() -> IdempotencyKey.parse(null)).isInstanceOf(NullPointerException.class);
    }

    @Test
    void aBareKeyMustBeAToken() {
        assertThat(IdempotencyKey.parse("order:42/payment_1")).isEqualTo("order:42/payment_1");
        assertThat(IdempotencyKey.parse("a!#$%&'*+-.^_`|~z")).isEqualTo("a!#$%&'*+-.^_`|~z");
        assertThatThrownBy(() -> IdempotencyKey.parse("not\"quoted"))
                .hasMessageContaining("U+0022")
                .hasMessageContaining("position 4")
                .hasMessageContaining("quoted string");
        for (String bad : new String[] {"a,b", "a;b", "a(b)", "a=b", "a?b", "a@b", "a[b]", "a{b}", "a\\b", "a<b>"}) {
            assertThatThrownBy(() -> IdempotencyKey.parse(bad)).as(bad).isInstanceOf(IllegalArgumentException.class);
        }
    }
}
