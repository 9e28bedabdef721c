package dev.outbox.archunit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.EvaluationResult;
import dev.outbox.archunit.fixtures.http.BadExchangeClient;
import dev.outbox.archunit.fixtures.http.BadFeignClient;
import dev.outbox.archunit.fixtures.http.BadFeignNativeClient;
import dev.outbox.archunit.fixtures.http.BadPayments;
import dev.outbox.archunit.fixtures.http.BadRestCalls;
import dev.outbox.archunit.fixtures.http.BadSpringClients;
import dev.outbox.archunit.fixtures.http.ExemptPayments;
import dev.outbox.archunit.fixtures.http.GoodExchangeClient;
import dev.outbox.archunit.fixtures.http.GoodFeignClient;
import dev.outbox.archunit.fixtures.http.GoodPayments;
import dev.outbox.archunit.fixtures.http.GoodSplitRequests;
import dev.outbox.archunit.fixtures.http.GoodSpringClients;
import dev.outbox.archunit.fixtures.http.OrdersContract;
import dev.outbox.archunit.fixtures.http.OrdersController;
import dev.outbox.archunit.fixtures.http.PaymentsEndpoint;
import dev.outbox.archunit.fixtures.http.RefundsApi;
import dev.outbox.archunit.fixtures.http.RefundsClient;
import dev.outbox.archunit.fixtures.http.SplitRequests;
import dev.outbox.archunit.fixtures.insert.BadBatchKeys;
import dev.outbox.archunit.fixtures.insert.BadJdbcBatchDuplicates;
import dev.outbox.archunit.fixtures.insert.BadJdbcBatchKeys;
import dev.outbox.archunit.fixtures.insert.BadJdbcClientKeys;
import dev.outbox.archunit.fixtures.insert.BadJdbcKeys;
import dev.outbox.archunit.fixtures.insert.BadJdbcStatementDuplicates;
import dev.outbox.archunit.fixtures.insert.BadKeys;
import dev.outbox.archunit.fixtures.insert.BadSimpleJdbcInsertKeys;
import dev.outbox.archunit.fixtures.insert.ExemptKeys;
import dev.outbox.archunit.fixtures.insert.GoodJdbcBatchKeys;
import dev.outbox.archunit.fixtures.insert.GoodJdbcStatementKeys;
import dev.outbox.archunit.fixtures.insert.GoodKeys;
import dev.outbox.archunit.fixtures.insert.GoodSpringJdbcKeys;
import dev.outbox.archunit.fixtures.listener.BadJdbcListeners;
import dev.outbox.archunit.fixtures.listener.BadListener;
import dev.outbox.archunit.fixtures.listener.BadMetaHandler;
import dev.outbox.archunit.fixtures.listener.BadMetaListener;
import dev.outbox.archunit.fixtures.listener.BadPollLoop;
import dev.outbox.archunit.fixtures.listener.BadRepeatedListener;
import dev.outbox.archunit.fixtures.listener.ClaimingListener;
import dev.outbox.archunit.fixtures.listener.Claims;
import dev.outbox.archunit.fixtures.listener.ClaimsHelperOnlyListener;
import dev.outbox.archunit.fixtures.listener.ExemptListener;
import dev.outbox.archunit.fixtures.listener.GoodListener;
import dev.outbox.archunit.fixtures.listener.HelperOnlyListener;
import dev.outbox.archunit.fixtures.listener.InterfaceListener;
import dev.outbox.archunit.fixtures.listener.JooqPaymentWriter;
import dev.outbox.archunit.fixtures.listener.MethodReferenceListener;
import dev.outbox.archunit.fixtures.listener.PaymentStore;
import dev.outbox.archunit.fixtures.listener.PaymentWriter;
import dev.outbox.archunit.fixtures.listener.ReadingJdbcListener;
import dev.outbox.archunit.fixtures.retry.BadClassRetries;
import dev.outbox.archunit.fixtures.retry.BadHelperSleep;
import dev.outbox.archunit.fixtures.retry.BadMetaRetries;
import dev.outbox.archunit.fixtures.retry.BadReactorRetries;
import dev.outbox.archunit.fixtures.retry.BadResilience4jClassRetries;
import dev.outbox.archunit.fixtures.retry.BadRetries;
import dev.outbox.archunit.fixtures.retry.BreakerRetries;
import dev.outbox.archunit.fixtures.retry.ExemptRetries;
import dev.outbox.archunit.fixtures.retry.GoodAnnotatedRetries;
import dev.outbox.archunit.fixtures.retry.GoodPolling;
import dev.outbox.archunit.fixtures.retry.GoodReactorRetries;
import dev.outbox.archunit.fixtures.retry.GoodRetries;
import dev.outbox.archunit.fixtures.retry.UnrelatedBreaker;
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
    void outboundHttp_firesOnSpringClientsGivenPostOrPatchAsAnArgument_quietForOtherMethods() {
        ArchRule rule = IdempotencyRules.nonIdempotentHttpGoesThroughTheIdempotentClient();

        assertThat(violations(rule, BadSpringClients.class))
                .hasSize(5)
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                BadSpringClients.class.getName()
                                        + ".exchange sends a POST/PATCH with RestTemplate.exchange",
                                "HttpMethod.POST"))
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                "BadSpringClients.execute sends a POST/PATCH with RestTemplate.execute",
                                "HttpMethod.PATCH"))
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                "BadSpringClients.requestEntity sends a POST/PATCH with RestTemplate.exchange",
                                "RequestEntity.post"))
                .anySatisfy(v ->
                        assertThat(v).contains("BadSpringClients.restClient sends a POST/PATCH with RestClient.method"))
                .anySatisfy(v ->
                        assertThat(v).contains("BadSpringClients.webClient sends a POST/PATCH with WebClient.method"))
                .allSatisfy(v -> assertThat(v).contains("IdempotentHttpClient", "IdempotencyExempt.OUTBOUND_HTTP"));
        // GET and PUT through the same calls, and HttpMethod.POST named where nothing is sent
        assertThat(violations(rule, GoodSpringClients.class)).isEmpty();
    }

    @Test
    void outboundHttp_firesOnPostAndPatchThroughRestOperations_theInterfaceAndTheTemplate() {
        ArchRule rule = IdempotencyRules.nonIdempotentHttpGoesThroughTheIdempotentClient();

        assertThat(violations(rule, BadRestCalls.class))
                .hasSize(3)
                .anySatisfy(v -> assertThat(v)
                        .contains(BadRestCalls.class.getName()
                                + ".charge sends a POST/PATCH with RestOperations.postForObject"))
                .anySatisfy(v -> assertThat(v)
                        .contains("BadRestCalls.amend sends a POST/PATCH with RestOperations.patchForObject"))
                .anySatisfy(v -> assertThat(v)
                        .contains("BadRestCalls.refund sends a POST/PATCH with RestTemplate.postForObject"))
                .allSatisfy(v -> assertThat(v).contains("IdempotentHttpClient", "IdempotencyExempt.OUTBOUND_HTTP"));
    }

    @Test
    void outboundHttp_firesOnAJdkPostBuiltApartFromItsSend_quietWhenTheClassSendsThroughTheIdempotentClient() {
        ArchRule rule = IdempotencyRules.nonIdempotentHttpGoesThroughTheIdempotentClient();

        assertThat(violations(rule, SplitRequests.class))
                .singleElement()
                .asString()
                .contains(
                        SplitRequests.class.getName() + ".charge builds a non-idempotent request (Builder.POST",
                        "SplitRequests never sends through IdempotentHttpClient",
                        "IdempotencyExempt.OUTBOUND_HTTP");
        assertThat(violations(rule, GoodSplitRequests.class, GoodPayments.class))
                .isEmpty();
    }

    @Test
    void outboundHttp_firesOnPostAndPatchOfInterfaceClients_quietWithAKeyParameterAndOnTheServerSide() {
        ArchRule rule = IdempotencyRules.nonIdempotentHttpGoesThroughTheIdempotentClient();

        assertThat(violations(rule, BadExchangeClient.class))
                .hasSize(3)
                .anySatisfy(v -> assertThat(v)
                        .contains(BadExchangeClient.class.getName()
                                + ".charge is a POST of an HTTP client interface (@PostExchange"))
                .anySatisfy(v -> assertThat(v).contains("BadExchangeClient.amend is a PATCH", "@PatchExchange"))
                .anySatisfy(v -> assertThat(v).contains("BadExchangeClient.refund is a POST", "@HttpExchange"))
                .allSatisfy(v -> assertThat(v)
                        .contains(
                                "@RequestHeader(\"Idempotency-Key\")",
                                "IdempotentHttpClient",
                                "IdempotencyExempt.OUTBOUND_HTTP"));
        assertThat(violations(rule, BadFeignClient.class))
                .hasSize(3)
                .anySatisfy(v ->
                        assertThat(v).contains(BadFeignClient.class.getName() + ".charge is a POST", "@PostMapping"))
                .anySatisfy(v -> assertThat(v).contains("BadFeignClient.amend is a PATCH", "@PatchMapping"))
                .anySatisfy(v -> assertThat(v).contains("BadFeignClient.refund is a POST", "@RequestMapping"));
        assertThat(violations(rule, BadFeignNativeClient.class))
                .singleElement()
                .asString()
                .contains(BadFeignNativeClient.class.getName() + ".charge is a POST", "@RequestLine");
        // a Feign client that inherits its mappings: the inherited method is the POST
        assertThat(violations(rule, RefundsApi.class, RefundsClient.class))
                .singleElement()
                .asString()
                .contains(RefundsApi.class.getName() + ".refund is a POST", "@PostMapping");

        // the key as a header parameter; an interface the service implements itself; mappings of a
        // server, and shared mappings no imported Feign client extends
        assertThat(violations(
                        rule,
                        GoodExchangeClient.class,
                        GoodFeignClient.class,
                        OrdersContract.class,
                        OrdersController.class,
                        PaymentsEndpoint.class,
                        PaymentsEndpoint.Api.class,
                        RefundsApi.class))
                .isEmpty();
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
    void retryBudget_firesOnClassLevelAndMetaAnnotatedRetriesAndReactor_quietUnderABreaker() {
        ArchRule rule = IdempotencyRules.retriesHaveABudget();

        // the public methods the class's annotation retries; the private one is not proxied
        assertThat(violations(rule, BadClassRetries.class))
                .hasSize(2)
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                BadClassRetries.class.getName() + ".charge is retried by the annotation on its class"))
                .anySatisfy(
                        v -> assertThat(v).contains("BadClassRetries.refund is retried by the annotation on its class"))
                .allSatisfy(v -> assertThat(v).contains("RetryBudget", "IdempotencyExempt.RETRY_BUDGET"));
        assertThat(violations(rule, BadResilience4jClassRetries.class))
                .singleElement()
                .asString()
                .contains("BadResilience4jClassRetries.charge is retried by the annotation on its class");
        assertThat(violations(rule, BadMetaRetries.class))
                .singleElement()
                .asString()
                .contains(BadMetaRetries.class.getName() + ".charge is annotated to retry");
        assertThat(violations(rule, BadReactorRetries.class))
                .hasSize(2)
                .anySatisfy(v -> assertThat(v).contains("BadReactorRetries.charge uses Mono.retry "))
                .anySatisfy(v -> assertThat(v).contains("BadReactorRetries.events uses Flux.retryWhen "));
        assertThat(violations(
                        rule, GoodReactorRetries.class, GoodAnnotatedRetries.class, GoodAnnotatedRetries.Guarded.class))
                .isEmpty();
    }

    @Test
    void retryBudget_wantsTheBudgetOrBreakerInTheRetryingMethod_notJustInItsClass() {
        ArchRule rule = IdempotencyRules.retriesHaveABudget();

        assertThat(violations(rule, UnrelatedBreaker.class))
                .singleElement()
                .asString()
                .contains(UnrelatedBreaker.class.getName() + ".charge uses Retry.executeSupplier", "RetryBudget");
        assertThat(violations(rule, BreakerRetries.class, GoodRetries.class)).isEmpty();
    }

    @Test
    void retryBudget_findsTheSleepOfAHandWrittenLoopInAHelperOfItsClass() {
        ArchRule rule = IdempotencyRules.retriesHaveABudget();

        assertThat(violations(rule, BadHelperSleep.class))
                .singleElement()
                .asString()
                .contains(
                        BadHelperSleep.class.getName() + ".charge is a hand-written retry loop",
                        "BadHelperSleep.backOff",
                        "Thread.sleep");
        // the budgeted loop that waits in a helper, and the poll that only catches the interrupt
        assertThat(violations(rule, GoodRetries.class, GoodPolling.class)).isEmpty();
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
    void listenerDedup_countsOnlyTheClaim_notAnyCallIntoTheDedupPrimitive() {
        ArchRule defaults = IdempotencyRules.kafkaListenersWriteThroughDedup();

        assertThat(violations(defaults, HelperOnlyListener.class))
                .singleElement()
                .asString()
                .contains(
                        "Kafka listener " + HelperOnlyListener.class.getName()
                                + ".on writes to the database (DSLContext.insertInto",
                        "ProcessedMessages.claim",
                        "IdempotencyExempt.LISTENER_DEDUP");
        assertThat(violations(defaults, ClaimingListener.class, PaymentWriter.class, JooqPaymentWriter.class))
                .isEmpty();

        // a configured primitive: a method (or prefix) after '#' counts alone; a bare class name, any of its calls
        ArchRule claimOnly = IdempotencyRules.kafkaListenersWriteThroughDedup(Claims.class.getName() + "#claim");
        assertThat(violations(claimOnly, ClaimsHelperOnlyListener.class, Claims.class, PaymentStore.class))
                .singleElement()
                .asString()
                .contains("ClaimsHelperOnlyListener.on writes to the database");
        assertThat(violations(claimOnly, GoodListener.class, Claims.class, PaymentStore.class))
                .isEmpty();
        assertThat(violations(
                        IdempotencyRules.kafkaListenersWriteThroughDedup(Claims.class.getName()),
                        ClaimsHelperOnlyListener.class,
                        Claims.class,
                        PaymentStore.class))
                .isEmpty();
    }

    @Test
    void listenerDedup_followsInterfacesToTheirImplementationsAndMethodReferences() {
        ArchRule defaults = IdempotencyRules.kafkaListenersWriteThroughDedup();

        assertThat(violations(defaults, InterfaceListener.class, PaymentWriter.class, JooqPaymentWriter.class))
                .singleElement()
                .asString()
                .contains(
                        "Kafka listener " + InterfaceListener.class.getName()
                                + ".on writes to the database (DSLContext.insertInto",
                        "JooqPaymentWriter.java");
        assertThat(violations(defaults, MethodReferenceListener.class))
                .singleElement()
                .asString()
                .contains(
                        "Kafka listener " + MethodReferenceListener.class.getName()
                                + ".on writes to the database (DSLContext.insertInto",
                        "MethodReferenceListener.java");
    }

    @Test
    void listenerDedup_recognisesListenersByATeamsAnnotationAndByRepeatedKafkaListener() {
        ArchRule defaults = IdempotencyRules.kafkaListenersWriteThroughDedup();

        assertThat(violations(defaults, BadMetaListener.class, PaymentStore.class))
                .singleElement()
                .asString()
                .contains("Kafka listener " + BadMetaListener.class.getName()
                        + ".on writes to the database (DSLContext.insertInto");
        assertThat(violations(defaults, BadMetaHandler.class, PaymentStore.class))
                .singleElement()
                .asString()
                .contains("Kafka listener " + BadMetaHandler.class.getName()
                        + ".on writes to the database (DSLContext.insertInto");
        assertThat(violations(defaults, BadRepeatedListener.class, PaymentStore.class))
                .singleElement()
                .asString()
                .contains("Kafka listener " + BadRepeatedListener.class.getName()
                        + ".on writes to the database (DSLContext.insertInto");
    }

    @Test
    void listenerDedup_seesWritesThroughSpringJdbcsInterfacesAndTemplate_notItsReads() {
        ArchRule defaults = IdempotencyRules.kafkaListenersWriteThroughDedup();

        assertThat(violations(defaults, BadJdbcListeners.class))
                .hasSize(5)
                .anySatisfy(v -> assertThat(v)
                        .contains(BadJdbcListeners.class.getName()
                                + ".update writes to the database (JdbcOperations.update"))
                .anySatisfy(v -> assertThat(v)
                        .contains("BadJdbcListeners.named writes to the database (NamedParameterJdbcOperations.update"))
                .anySatisfy(v -> assertThat(v)
                        .contains("BadJdbcListeners.execute writes to the database (JdbcOperations.execute"))
                .anySatisfy(v ->
                        assertThat(v).contains("BadJdbcListeners.template writes to the database (JdbcTemplate.update"))
                .anySatisfy(v -> assertThat(v)
                        .contains("BadJdbcListeners.simpleInsert writes to the database (SimpleJdbcInsert.execute"));
        // a query, and execute with a callback that only queries: execute(String) alone is a write
        assertThat(violations(defaults, ReadingJdbcListener.class)).isEmpty();
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
    void insertFirst_seesInsertsThroughSpringJdbcsInterfaces() {
        ArchRule rule = IdempotencyRules.noSelectThenInsert();

        assertThat(violations(rule, BadJdbcKeys.class))
                .hasSize(2)
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                BadJdbcKeys.class.getName() + ".remember checks for an existing row",
                                "then inserts (JdbcOperations.update"))
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                "BadJdbcKeys.rememberNamed checks for an existing row",
                                "then inserts (NamedParameterJdbcOperations.update"));
    }

    @Test
    void insertFirst_seesSpringJdbcsBatchUpdates_quietWhenTheDuplicateIsCaught() {
        ArchRule rule = IdempotencyRules.noSelectThenInsert();

        assertThat(violations(rule, BadBatchKeys.class))
                .hasSize(3)
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                BadBatchKeys.class.getName() + ".remember checks for an existing row",
                                "then inserts (JdbcOperations.batchUpdate"))
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                "BadBatchKeys.rememberStatements checks for an existing row",
                                "then inserts (JdbcTemplate.batchUpdate"))
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                "BadBatchKeys.rememberNamed checks for an existing row",
                                "then inserts (NamedParameterJdbcOperations.batchUpdate"))
                .allSatisfy(v -> assertThat(v).contains("ON CONFLICT DO NOTHING", "IdempotencyExempt.INSERT_FIRST"));
        // the same inserts, each catching DuplicateKeyException or DataIntegrityViolationException
        assertThat(violations(rule, GoodSpringJdbcKeys.class)).isEmpty();
    }

    @Test
    void insertFirst_seesInsertsThroughJdbcClientAndSimpleJdbcInsert_quietWhenTheDuplicateIsCaught() {
        ArchRule rule = IdempotencyRules.noSelectThenInsert();

        assertThat(violations(rule, BadJdbcClientKeys.class))
                .singleElement()
                .asString()
                .contains(
                        BadJdbcClientKeys.class.getName() + ".remember checks for an existing row",
                        "then inserts (StatementSpec.update");
        // on the class and on its interface
        assertThat(violations(rule, BadSimpleJdbcInsertKeys.class))
                .hasSize(2)
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                BadSimpleJdbcInsertKeys.class.getName() + ".remember checks for an existing row",
                                "then inserts (SimpleJdbcInsert.execute "))
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                "BadSimpleJdbcInsertKeys.rememberBatch checks for an existing row",
                                "then inserts (SimpleJdbcInsertOperations.executeBatch"));
        assertThat(violations(rule, GoodSpringJdbcKeys.class)).isEmpty();
    }

    @Test
    void insertFirst_seesJdbcBatchesOnStatementAndPreparedStatement() {
        ArchRule rule = IdempotencyRules.noSelectThenInsert();

        assertThat(violations(rule, BadJdbcBatchKeys.class))
                .hasSize(3)
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                BadJdbcBatchKeys.class.getName() + ".remember checks for an existing row",
                                "then inserts (PreparedStatement.executeBatch"))
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                "BadJdbcBatchKeys.rememberLarge checks for an existing row",
                                "then inserts (Statement.executeLargeBatch"))
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                "BadJdbcBatchKeys.rememberOne checks for an existing row",
                                "then inserts (PreparedStatement.executeUpdate"));
    }

    @Test
    void insertFirst_quietWhenAJdbcBatchsBatchUpdateExceptionIsToldApartByItsSqlState() {
        ArchRule rule = IdempotencyRules.noSelectThenInsert();

        // the next exception's SQLState, on a PreparedStatement; the exception's own, on a Statement
        assertThat(violations(rule, GoodJdbcBatchKeys.class)).isEmpty();
    }

    @Test
    void insertFirst_firesWhenABatchUpdateExceptionIsOnlyWrapped_orASingleInsertSitsNextToTheBatch() {
        ArchRule rule = IdempotencyRules.noSelectThenInsert();

        assertThat(violations(rule, BadJdbcBatchDuplicates.class))
                .hasSize(2)
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                BadJdbcBatchDuplicates.class.getName() + ".rememberOrFail checks for an existing row",
                                "then inserts (PreparedStatement.executeBatch"))
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                "BadJdbcBatchDuplicates.rememberWithItsBatch checks for an existing row",
                                "then inserts (PreparedStatement.executeUpdate"));
    }

    @Test
    void insertFirst_quietWhenAJdbcInsertsSqlExceptionIsToldApartByItsSqlState() {
        ArchRule rule = IdempotencyRules.noSelectThenInsert();

        // SQLException around executeUpdate, PostgreSQL's PSQLException around executeLargeUpdate,
        // SQLException around an execute and a batch
        assertThat(violations(rule, GoodJdbcStatementKeys.class)).isEmpty();
    }

    @Test
    void insertFirst_firesWhenASqlExceptionIsOnlyWrapped_orItsHandlerMissesTheBatchUpdateException() {
        ArchRule rule = IdempotencyRules.noSelectThenInsert();

        assertThat(violations(rule, BadJdbcStatementDuplicates.class))
                .hasSize(2)
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                BadJdbcStatementDuplicates.class.getName()
                                        + ".rememberOrFail checks for an existing row",
                                "then inserts (PreparedStatement.executeUpdate"))
                .anySatisfy(v -> assertThat(v)
                        .contains(
                                "BadJdbcStatementDuplicates.rememberBatchOnPostgres checks for an existing row",
                                "then inserts (PreparedStatement.executeBatch"));
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
