package dev.outbox.consumer;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.time.Duration;
import java.util.UUID;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Test;

/** {@link ProcessedMessages}' argument checks, which run before the connection is touched. */
class ProcessedMessagesTest {
    /** Fails any use: the checks must refuse the call before the connection is asked anything. */
    private static final Connection UNTOUCHED = (Connection) Proxy.newProxyInstance(
            Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, (p, m, args) -> {
                throw new UnsupportedOperationException("the connection was used: " + m.getName());
            });

    private final ProcessedMessages processed = ProcessedMessages.create();

    /**
     * A consumer name with whitespace at either end or a control character ("payments\n" from an
     * environment variable) was a dedup scope apart from "payments": claims under it applied messages
     * that "payments" had processed. claim, with either kind of transaction, and purge refuse it, as
     * the builder's consumerName does.
     */
    @Test
    void refusesConsumerNamesWithSurroundingWhitespaceOrControlCharacters() {
        UUID id = UUID.randomUUID();
        for (String bad : new String[] {"payments\n", " payments", "payments "}) {
            assertThatThrownBy(() -> processed.claim(UNTOUCHED, bad, id))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("consumer may not start or end with whitespace")
                    .hasMessageContaining("apart from \"payments\"");
            assertThatThrownBy(() -> processed.claim(DSL.using(UNTOUCHED, SQLDialect.POSTGRES), bad, id))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("consumer may not start or end with whitespace");
            assertThatThrownBy(() -> processed.purge(UNTOUCHED, bad, Duration.ofDays(7)))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("consumer may not start or end with whitespace");
        }
        assertThatThrownBy(() -> processed.claim(UNTOUCHED, "pay\u0000ments", id))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("consumer may not contain control characters")
                .hasMessageContaining("U+0000 at index 3");
        assertThatThrownBy(() -> processed.claim(UNTOUCHED, " ", id))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("consumer must be 1 to 200 characters and not blank");
    }
}
