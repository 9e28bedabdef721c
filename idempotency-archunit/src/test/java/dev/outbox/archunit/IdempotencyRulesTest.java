package dev.outbox.archunit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.EvaluationResult;
import dev.outbox.archunit.fixtures.http.BadPayments;
import dev.outbox.archunit.fixtures.http.ExemptPayments;
import dev.outbox.archunit.fixtures.http.GoodPayments;
import dev.outbox.archunit.fixtures.insert.BadKeys;
import dev.outbox.archunit.fixtures.insert.ExemptKeys;
import dev.outbox.archunit.fixtures.insert.GoodKeys;
import dev.outbox.archunit.fixtures.listener.BadListener;
import dev.outbox.archunit.fixtures.listener.BadPollLoop;
import dev.outbox.archunit.fixtures.listener.Claims;
import dev.outbox.archunit.fixtures.listener.ExemptListener;
import dev.outbox.archunit.fixtures.listener.GoodListener;
import dev.outbox.archunit.fixtures.listener.PaymentStore;
import dev.outbox.archunit.fixtures.retry.BadRetries;
import dev.outbox.archunit.fixtures.retry.BreakerRetries;
import dev.outbox.archunit.fixtures.retry.ExemptRetries;
import dev.outbox.archunit.fixtures.retry.GoodPolling;
import dev.outbox.archunit.fixtures.retry.GoodRetries;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Each rule fires on its bad fixture, naming the code and the fix, and stays quiet on the good and
 * the exempted ones.
 */
class IdempotencyRulesTest {

    private static List<String> violations(ArchRule rule, Class<?>... fixtures) {
        EvaluationResult result = rule.evaluate(new ClassFileImporter().importClasses(fixtures));
        return result.getFailureReport().getDetails();
    }

    @Test
    void outboundHttp_firesOnAPostThroughTheJdkClient_quietThroughTheIdempotentClientAndWhenExempt() {
        ArchRule rule = IdempotencyRules.nonIdempotentHttpGoesThroughTheIdempotentClient();

        assertThat(violations(rule, BadPayments.class))
                .singleElement()
                .asString()
                .contains(
                        BadPayments.class.getName() + ".pay builds a non-idempotent request",
                        "HttpClient.send",
                        "IdempotentHttpClient",
                        "IdempotencyExempt.OUTBOUND_HTTP");
        assertThat(violations(rule, GoodPayments.class)).isEmpty();
        // the exempt method passes; the one whose reason is blank does not
        assertThat(violations(rule, ExemptPayments.class))
                .singleElement()
                .asString()
                .contains("ExemptPayments.blankReason");
    }

    @Test
    void retryBudget_firesOnResilience4jSpringRetryAndHandWrittenLoops_quietUnderABudgetOrBreaker() {
        ArchRule rule = IdempotencyRules.retriesHaveABudget();

        assertThat(violations(rule, BadRetries.class))
                .hasSize(3)
                .anySatisfy(v -> assertThat(v).contains("BadRetries.resilience4j uses Retry."))
                .anySatisfy(v -> assertThat(v).contains("BadRetries.springRetry is annotated to retry"))
                .anySatisfy(v -> assertThat(v).contains("BadRetries.handWritten is a hand-written retry loop"))
                .allSatisfy(v -> assertThat(v).contains("RetryBudget", "IdempotencyExempt.RETRY_BUDGET"));
        assertThat(violations(rule, GoodRetries.class, BreakerRetries.class, GoodPolling.class, ExemptRetries.class))
                .isEmpty();
    }

    @Test
    void listenerDedup_firesOnListenersThatWriteWithoutDedup_quietWithTheConfiguredPrimitiveAndWhenExempt() {
        ArchRule defaults = IdempotencyRules.kafkaListenersWriteThroughDedup();

        assertThat(violations(defaults, BadListener.class, PaymentStore.class))
                .singleElement()
                .asString()
                .contains(
                        "Kafka listener " + BadListener.class.getName()
                                + ".on writes to the database (DSLContext.insertInto",
                        "PaymentStore.java",
                        "IdempotencyExempt.LISTENER_DEDUP");
        assertThat(violations(defaults, BadPollLoop.class))
                .singleElement()
                .asString()
                .contains("BadPollLoop.run writes to the database (PreparedStatement.executeUpdate");
        assertThat(violations(defaults, ExemptListener.class, PaymentStore.class))
                .isEmpty();

        // the claim through the dedup primitive, in the write's transaction, satisfies the rule
        ArchRule configured = IdempotencyRules.kafkaListenersWriteThroughDedup(Claims.class.getName());
        assertThat(violations(configured, GoodListener.class, Claims.class, PaymentStore.class))
                .isEmpty();
        assertThat(violations(configured, BadListener.class, PaymentStore.class))
                .hasSize(1);
        assertThat(IdempotencyRules.DEFAULT_DEDUP)
                .containsExactly(
                        "dev.outbox.consumer.IdempotentConsumer",
                        "dev.outbox.consumer.ProcessedMessages",
                        "dev.outbox.spring.ProcessedMessagesTemplate");
        assertThatThrownBy(() -> IdempotencyRules.kafkaListenersWriteThroughDedup(new String[0]))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void insertFirst_firesOnSelectThenInsert_quietOnInsertFirstOrAHandledDuplicateAndWhenExempt() {
        ArchRule rule = IdempotencyRules.noSelectThenInsert();

        assertThat(violations(rule, BadKeys.class))
                .singleElement()
                .asString()
                .contains(
                        BadKeys.class.getName() + ".remember checks for an existing row (DSLContext.fetchExists",
                        "then inserts (DSLContext.insertInto",
                        "ON CONFLICT DO NOTHING",
                        "IdempotencyExempt.INSERT_FIRST");
        assertThat(violations(rule, GoodKeys.class, ExemptKeys.class)).isEmpty();
    }

    @Test
    void allRulesTogether() {
        assertThat(violations(
                        IdempotencyRules.all(),
                        BadPayments.class,
                        BadRetries.class,
                        BadKeys.class,
                        BadListener.class,
                        PaymentStore.class))
                .hasSize(1 + 3 + 1 + 1);
        assertThat(violations(
                        IdempotencyRules.all(),
                        GoodPayments.class,
                        GoodRetries.class,
                        GoodKeys.class,
                        ExemptListener.class,
                        PaymentStore.class))
                .isEmpty();
    }
}
