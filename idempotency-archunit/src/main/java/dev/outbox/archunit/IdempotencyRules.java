package dev.outbox.archunit;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.codeUnits;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaCall;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaCodeUnit;
import com.tngtech.archunit.lang.ArchCondition;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.CompositeArchRule;
import com.tngtech.archunit.lang.ConditionEvents;
import com.tngtech.archunit.lang.SimpleConditionEvent;
import dev.outbox.core.IdempotencyExempt;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Build-time rules for the unsafe idempotency patterns teams write again and again, as ArchUnit
 * rules to run in a service's own tests:
 *
 * <pre>{@code
 * @Test
 * void idempotencyRules() {
 *   JavaClasses classes = new ClassFileImporter()
 *       .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
 *       .importPackages("com.example.shop");
 *   IdempotencyRules.all().check(classes);
 * }
 * }</pre>
 *
 * <p>The rules read compiled code, so they see calls, annotations and caught exceptions, not
 * argument values or control flow; each says below what it matches. Every rule has the same escape
 * hatch: {@link IdempotencyExempt} on the method or class, naming the rule and a reason; a blank
 * reason does not count. To adopt them on a code base with many findings, freeze the current ones
 * with ArchUnit's {@code FreezingArchRule.freeze(rule)} and fix them over time.
 */
public final class IdempotencyRules {

    /**
     * What counts as the dedup primitive by default: consumer-dedup's {@code IdempotentConsumer} and
     * {@code ProcessedMessages} (the claim for a {@code @KafkaListener} of your own).
     */
    public static final List<String> DEFAULT_DEDUP = List.of(
            "dev.outbox.consumer.IdempotentConsumer",
            "dev.outbox.consumer.ProcessedMessages",
            "dev.outbox.spring.ProcessedMessagesTemplate");

    private static final String JOOQ = "org.jooq.DSLContext";

    private IdempotencyRules() {}

    /** @return the four rules with their defaults */
    public static ArchRule all() {
        return CompositeArchRule.of(nonIdempotentHttpGoesThroughTheIdempotentClient())
                .and(retriesHaveABudget())
                .and(kafkaListenersWriteThroughDedup())
                .and(noSelectThenInsert());
    }

    // ---------------------------------------------------------------- outbound HTTP

    /** Building a POST or PATCH (or any method by name) with the JDK's request builder. */
    private static final List<Code.Api> JDK_NON_IDEMPOTENT =
            List.of(Code.api("java.net.http.HttpRequest$Builder", "POST", "method"));

    private static final List<Code.Api> JDK_SEND = List.of(Code.api("java.net.http.HttpClient", "send", "sendAsync"));

    /** One call that sends a POST or PATCH through a client that neither keys nor budgets it. */
    private static final List<Code.Api> DIRECT_NON_IDEMPOTENT = List.of(
            Code.api(
                    "org.springframework.web.client.RestTemplate",
                    "postForObject",
                    "postForEntity",
                    "postForLocation",
                    "patchForObject"),
            Code.api("org.springframework.web.client.RestClient", "post", "patch"),
            Code.api("org.springframework.web.reactive.function.client.WebClient", "post", "patch"),
            Code.api("okhttp3.Request$Builder", "post", "patch"),
            Code.api("org.apache.hc.client5.http.classic.methods.HttpPost"),
            Code.api("org.apache.hc.client5.http.classic.methods.HttpPatch"),
            Code.api("org.apache.http.client.methods.HttpPost"),
            Code.api("org.apache.http.client.methods.HttpPatch"));

    /**
     * Outbound POST and PATCH calls go through {@code dev.outbox.http.client.IdempotentHttpClient},
     * which mints one {@code Idempotency-Key} per operation and reuses it on every attempt, and
     * retries under a budget and a breaker. Flags a method that builds a POST (or a request by method
     * name) with {@code java.net.http.HttpRequest.Builder} and sends it with {@code
     * java.net.http.HttpClient.send/sendAsync}, and any call of Spring's {@code RestTemplate.postFor*
     * / patchForObject}, {@code RestClient.post/patch}, {@code WebClient.post/patch}, OkHttp's {@code
     * Request.Builder.post/patch} or Apache HttpClient's {@code HttpPost/HttpPatch}. The client's own
     * package is left out. Escape hatch: {@code @IdempotencyExempt(rules = OUTBOUND_HTTP, reason =
     * "...")}, e.g. for a call whose target takes no key and changes nothing.
     *
     * @return the rule
     */
    public static ArchRule nonIdempotentHttpGoesThroughTheIdempotentClient() {
        return codeUnits()
                .that(notInPackage("dev.outbox.http.client"))
                .should(new ArchCondition<JavaCodeUnit>("send POST and PATCH through IdempotentHttpClient") {
                    @Override
                    public void check(JavaCodeUnit unit, ConditionEvents events) {
                        if (Code.exempt(unit, IdempotencyExempt.OUTBOUND_HTTP)) {
                            return;
                        }
                        List<JavaCall<?>> built = Code.calls(unit, JDK_NON_IDEMPOTENT);
                        List<JavaCall<?>> sent = Code.calls(unit, JDK_SEND);
                        if (!built.isEmpty() && !sent.isEmpty()) {
                            violated(
                                    events,
                                    unit,
                                    Code.name(unit) + " builds a non-idempotent request (" + Code.where(built.get(0))
                                            + ") and sends it with " + Code.where(sent.get(0))
                                            + ": no Idempotency-Key, no retry budget." + HTTP_FIX);
                        }
                        for (JavaCall<?> call : Code.calls(unit, DIRECT_NON_IDEMPOTENT)) {
                            violated(
                                    events,
                                    unit,
                                    Code.name(unit) + " sends a POST/PATCH with " + Code.where(call)
                                            + ", outside the idempotent client." + HTTP_FIX);
                        }
                    }
                })
                .allowEmptyShould(true)
                .as("POST and PATCH calls go through IdempotentHttpClient (rule " + IdempotencyExempt.OUTBOUND_HTTP
                        + ")");
    }

    private static final String HTTP_FIX =
            " Send it with dev.outbox.http.client.IdempotentHttpClient (one key per operation,"
                    + " reused on every attempt), or mark the method @IdempotencyExempt(rules = IdempotencyExempt.OUTBOUND_HTTP,"
                    + " reason = \"...\").";

    // ---------------------------------------------------------------- retry budget

    private static final List<Code.Api> RETRY_APIS = List.of(
            Code.api("io.github.resilience4j.retry.Retry"),
            Code.api("io.github.resilience4j.retry.RetryConfig"),
            Code.api("io.github.resilience4j.retry.RetryRegistry"),
            Code.api("org.springframework.retry.support.RetryTemplate"),
            Code.api("org.springframework.retry.support.RetryTemplateBuilder"),
            Code.api("org.springframework.core.retry.RetryTemplate"));

    private static final Set<String> RETRY_ANNOTATIONS = Set.of(
            "io.github.resilience4j.retry.annotation.Retry",
            "org.springframework.retry.annotation.Retryable",
            "org.springframework.resilience.annotation.Retryable");

    private static final List<Code.Api> SLEEPS =
            List.of(Code.api("java.lang.Thread", "sleep"), Code.api("java.util.concurrent.TimeUnit", "sleep"));

    private static final List<Code.Api> BUDGET_APIS = List.of(
            Code.api("dev.outbox.core.retry.RetryBudget"),
            Code.api("io.github.resilience4j.circuitbreaker.CircuitBreaker"),
            Code.api("org.springframework.retry.policy.CircuitBreakerRetryPolicy"));

    private static final Set<String> BUDGET_ANNOTATIONS = Set.of(
            "io.github.resilience4j.circuitbreaker.annotation.CircuitBreaker",
            "org.springframework.retry.annotation.CircuitBreaker");

    /**
     * Retry loops are limited by a retry budget or a circuit breaker (guarantee G6), so that a failing
     * dependency is not hammered by every caller's retries at once. A class that retries must also
     * use {@code dev.outbox.core.retry.RetryBudget}, a Resilience4j {@code CircuitBreaker} (object or
     * annotation), or Spring Retry's {@code @CircuitBreaker} / {@code CircuitBreakerRetryPolicy}.
     * Retrying means: calling Resilience4j's {@code Retry}, {@code RetryConfig} or {@code
     * RetryRegistry}; Spring Retry's or Spring Framework's {@code RetryTemplate}; a {@code @Retry} or
     * {@code @Retryable} annotation; or a hand-written loop, recognised as a method that catches an
     * exception other than {@code InterruptedException} and sleeps ({@code Thread.sleep}, {@code
     * TimeUnit.sleep}) in the handler or after it. Escape hatch: {@code @IdempotencyExempt(rules = RETRY_BUDGET, reason =
     * "...")}, e.g. for a bounded start-up probe.
     *
     * @return the rule
     */
    public static ArchRule retriesHaveABudget() {
        return codeUnits()
                .should(new ArchCondition<JavaCodeUnit>("retry only under a retry budget or a circuit breaker") {
                    @Override
                    public void check(JavaCodeUnit unit, ConditionEvents events) {
                        if (Code.exempt(unit, IdempotencyExempt.RETRY_BUDGET) || hasBudget(unit.getOwner())) {
                            return;
                        }
                        String how = null;
                        List<JavaCall<?>> retry = Code.calls(unit, RETRY_APIS);
                        if (!retry.isEmpty()) {
                            how = "uses " + Code.where(retry.get(0));
                        } else if (unit.getAnnotations().stream()
                                .anyMatch(a -> RETRY_ANNOTATIONS.contains(
                                        a.getRawType().getName()))) {
                            how = "is annotated to retry";
                        } else {
                            List<JavaCall<?>> sleeps = Code.calls(unit, SLEEPS);
                            if (Code.afterCatching(unit, sleeps, t -> !t.isAssignableTo(InterruptedException.class))) {
                                how = "is a hand-written retry loop (catches and sleeps, " + Code.where(sleeps.get(0))
                                        + ")";
                            }
                        }
                        if (how != null) {
                            violated(
                                    events,
                                    unit,
                                    Code.name(unit) + " " + how + " without a retry budget or circuit breaker in "
                                            + unit.getOwner().getSimpleName()
                                            + ". Guard it with dev.outbox.core.retry.RetryBudget or a circuit breaker"
                                            + " (and back off with full jitter, dev.outbox.core.retry.Backoff), or mark it @IdempotencyExempt(rules ="
                                            + " IdempotencyExempt.RETRY_BUDGET, reason = \"...\").");
                        }
                    }
                })
                .allowEmptyShould(true)
                .as("retries run under a retry budget or a circuit breaker (rule " + IdempotencyExempt.RETRY_BUDGET
                        + ")");
    }

    private static boolean hasBudget(JavaClass type) {
        if (BUDGET_ANNOTATIONS.stream().anyMatch(type::isAnnotatedWith)) {
            return true;
        }
        for (JavaCodeUnit u : type.getCodeUnits()) {
            if (!Code.calls(u, BUDGET_APIS).isEmpty()
                    || BUDGET_ANNOTATIONS.stream().anyMatch(u::isAnnotatedWith)) {
                return true;
            }
        }
        return type.getAllFields().stream()
                .anyMatch(f -> BUDGET_APIS.stream().anyMatch(a -> f.getRawType().isAssignableTo(a.owner())));
    }

    // ---------------------------------------------------------------- listeners and dedup

    private static final Set<String> LISTENER_ANNOTATIONS = Set.of(
            "org.springframework.kafka.annotation.KafkaListener", "org.springframework.kafka.annotation.KafkaHandler");

    private static final List<Code.Api> POLL = List.of(Code.api("org.apache.kafka.clients.consumer.Consumer", "poll"));

    /** Database writes: jOOQ, JDBC, Spring JDBC, JPA, Spring Data. */
    static final List<Code.Api> DB_WRITES = List.of(
            Code.api(JOOQ, "insertInto", "update", "delete", "deleteFrom", "mergeInto", "execute", "batch*"),
            Code.api(
                    "java.sql.Statement",
                    "executeUpdate",
                    "executeLargeUpdate",
                    "executeBatch",
                    "executeLargeBatch",
                    "execute"),
            Code.api("org.springframework.jdbc.core.JdbcTemplate", "update", "batchUpdate"),
            Code.api("org.springframework.jdbc.core.namedparam.NamedParameterJdbcTemplate", "update", "batchUpdate"),
            Code.api("org.springframework.jdbc.core.simple.JdbcClient$StatementSpec", "update"),
            Code.api("jakarta.persistence.EntityManager", "persist", "merge", "remove"),
            Code.api("org.springframework.data.repository.CrudRepository", "save*", "delete*"));

    private static final Set<String> LIBRARY_PACKAGES = Set.of(
            "java.",
            "javax.",
            "jakarta.",
            "org.jooq.",
            "org.springframework.",
            "org.apache.kafka.",
            "dev.outbox.core.",
            "dev.outbox.consumer.",
            "dev.outbox.http.",
            "dev.outbox.relay.",
            "dev.outbox.migrations.",
            "dev.outbox.schemas.");

    /**
     * {@link #kafkaListenersWriteThroughDedup(String...)} with {@link #DEFAULT_DEDUP} as the dedup
     * primitive.
     *
     * @return the rule
     */
    public static ArchRule kafkaListenersWriteThroughDedup() {
        return kafkaListenersWriteThroughDedup(DEFAULT_DEDUP.toArray(String[]::new));
    }

    /**
     * Kafka listeners that write to the database do it through the dedup primitive (guarantee G4),
     * which records the message id in the same transaction as the write, so a redelivered record is
     * skipped. Listeners are methods annotated {@code @KafkaListener} or {@code @KafkaHandler}, and
     * methods that call {@code Consumer.poll} (a hand-written loop). The rule follows their calls into
     * the application's own classes (not into libraries, up to 8 calls deep, including lambdas); when
     * it reaches a database write (jOOQ {@code insertInto/update/delete...}, JDBC {@code
     * executeUpdate/execute...}, Spring's {@code JdbcTemplate.update}, JPA {@code persist/merge},
     * Spring Data {@code save/delete}) and no call into the dedup primitive, it flags the listener.
     * Handlers given to {@code IdempotentConsumer} are never listeners in this sense. It cannot see
     * that the dedup call and the write share a transaction; the dedup primitive's API makes that the
     * only way to use it. Escape hatch: {@code @IdempotencyExempt(rules = LISTENER_DEDUP, reason =
     * "...")}, e.g. for a listener whose write is idempotent by itself (an upsert of the latest state).
     *
     * @param dedup what counts as the dedup primitive: fully qualified class names, or packages
     *     ending in {@code ..} (every class in and below them)
     * @return the rule
     * @throws IllegalArgumentException when none is given
     */
    public static ArchRule kafkaListenersWriteThroughDedup(String... dedup) {
        Objects.requireNonNull(dedup, "dedup may not be null");
        if (dedup.length == 0) {
            throw new IllegalArgumentException(
                    "give at least one dedup class or package, e.g. " + DEFAULT_DEDUP.get(1));
        }
        List<String> primitives = List.of(dedup);
        return codeUnits()
                .should(
                        new ArchCondition<JavaCodeUnit>(
                                "write to the database only through the dedup primitive " + primitives) {
                            @Override
                            public void check(JavaCodeUnit unit, ConditionEvents events) {
                                boolean listener = LISTENER_ANNOTATIONS.stream().anyMatch(unit::isAnnotatedWith)
                                        || !Code.calls(unit, POLL).isEmpty();
                                if (!listener || Code.exempt(unit, IdempotencyExempt.LISTENER_DEDUP)) {
                                    return;
                                }
                                JavaCall<?> write = null;
                                boolean deduplicated = false;
                                Deque<JavaCodeUnit> todo = new ArrayDeque<>(List.of(unit));
                                Set<JavaCodeUnit> seen = new HashSet<>();
                                for (int depth = 0; depth <= 8 && !todo.isEmpty(); depth++) {
                                    Deque<JavaCodeUnit> next = new ArrayDeque<>();
                                    for (JavaCodeUnit u : todo) {
                                        if (!seen.add(u)) {
                                            continue;
                                        }
                                        next.addAll(Code.lambdasOf(u));
                                        for (JavaCall<?> call : u.getCallsFromSelf()) {
                                            JavaClass owner = call.getTarget().getOwner();
                                            if (isPrimitive(owner, primitives)) {
                                                deduplicated = true;
                                            } else if (write == null
                                                    && DB_WRITES.stream().anyMatch(a -> a.matches(call.getTarget()))) {
                                                write = call;
                                            } else if (!isLibrary(owner)) {
                                                call.getTarget().resolveMember().ifPresent(next::add);
                                            }
                                        }
                                    }
                                    todo = next;
                                }
                                if (write != null && !deduplicated) {
                                    violated(
                                            events,
                                            unit,
                                            "Kafka listener " + Code.name(unit) + " writes to the database ("
                                                    + Code.where(write)
                                                    + ") without the dedup primitive " + primitives
                                                    + ": a redelivered record writes again. Handle the"
                                                    + " record through dev.outbox.consumer.IdempotentConsumer (or the @KafkaListener dedup primitive), which"
                                                    + " records the message id in the write's transaction; or mark it @IdempotencyExempt(rules ="
                                                    + " IdempotencyExempt.LISTENER_DEDUP, reason = \"...\").");
                                }
                            }
                        })
                .allowEmptyShould(true)
                .as("Kafka listeners write to the database through the dedup primitive (rule "
                        + IdempotencyExempt.LISTENER_DEDUP + ")");
    }

    private static boolean isPrimitive(JavaClass owner, List<String> primitives) {
        String name = owner.getName();
        for (String p : primitives) {
            if (p.endsWith("..")
                    ? name.startsWith(p.substring(0, p.length() - 1))
                            || owner.getPackageName().equals(p.substring(0, p.length() - 2))
                    : name.equals(p) || owner.isAssignableTo(p)) {
                return true;
            }
        }
        return false;
    }

    private static boolean isLibrary(JavaClass owner) {
        String name = owner.getName();
        return LIBRARY_PACKAGES.stream().anyMatch(name::startsWith);
    }

    // ---------------------------------------------------------------- insert first

    private static final List<Code.Api> EXISTENCE_CHECKS = List.of(
            Code.api(JOOQ, "fetchExists", "fetchCount", "selectCount"),
            Code.api("org.springframework.data.repository.Repository", "exists*", "count*"));

    private static final List<Code.Api> INSERTS = List.of(
            Code.api(JOOQ, "insertInto"),
            Code.api("java.sql.Statement", "executeUpdate", "executeLargeUpdate", "execute"),
            Code.api("org.springframework.jdbc.core.JdbcTemplate", "update"),
            Code.api("org.springframework.jdbc.core.namedparam.NamedParameterJdbcTemplate", "update"),
            Code.api("jakarta.persistence.EntityManager", "persist"),
            Code.api("org.springframework.data.repository.CrudRepository", "save*"));

    private static final List<Code.Api> CONFLICT_HANDLING = List.of(
            Code.api("org.jooq.InsertOnDuplicateStep", "onConflict*", "onDuplicateKey*"),
            Code.api("org.jooq.InsertOnConflictWhereIndexPredicateStep"),
            Code.api("org.jooq.InsertOnConflictDoUpdateStep"));

    private static final Set<String> DUPLICATE_KEY_EXCEPTIONS = Set.of(
            "java.sql.SQLIntegrityConstraintViolationException",
            "org.jooq.exception.IntegrityConstraintViolationException",
            "org.springframework.dao.DataIntegrityViolationException");

    /**
     * Idempotency checks rely on the unique constraint, never on "select, then insert" (which lets
     * two concurrent duplicates both see "absent" and both insert). Flags a method that calls an
     * existence check (jOOQ {@code fetchExists/fetchCount/selectCount}, a Spring Data repository's
     * {@code exists*} or {@code count*}) and then, further down, an insert (jOOQ {@code insertInto},
     * JDBC {@code executeUpdate/execute}, {@code JdbcTemplate.update}, JPA {@code persist}, Spring Data
     * {@code save*}), unless the method handles the conflict the database reports: jOOQ {@code
     * onConflict...} / {@code onDuplicateKey...}, or catching a duplicate-key exception ({@code
     * SQLIntegrityConstraintViolationException}, jOOQ's {@code IntegrityConstraintViolationException},
     * Spring's {@code DataIntegrityViolationException} and subtypes). Escape hatch: {@code
     * @IdempotencyExempt(rules = INSERT_FIRST, reason = "...")}, e.g. when a lock taken before the
     * check serialises the writers.
     *
     * @return the rule
     */
    public static ArchRule noSelectThenInsert() {
        return codeUnits()
                .should(new ArchCondition<JavaCodeUnit>("insert first and let the unique constraint decide") {
                    @Override
                    public void check(JavaCodeUnit unit, ConditionEvents events) {
                        if (Code.exempt(unit, IdempotencyExempt.INSERT_FIRST)) {
                            return;
                        }
                        List<JavaCall<?>> checks = Code.calls(unit, EXISTENCE_CHECKS);
                        if (checks.isEmpty()) {
                            return;
                        }
                        List<JavaCall<?>> inserts = new ArrayList<>(Code.calls(unit, INSERTS));
                        inserts.removeIf(i -> i.getLineNumber() < checks.get(0).getLineNumber());
                        if (inserts.isEmpty()
                                || !Code.calls(unit, CONFLICT_HANDLING).isEmpty()
                                || Code.catches(
                                        unit,
                                        t -> DUPLICATE_KEY_EXCEPTIONS.stream().anyMatch(t::isAssignableTo))) {
                            return;
                        }
                        violated(
                                events,
                                unit,
                                Code.name(unit) + " checks for an existing row (" + Code.where(checks.get(0))
                                        + ") and then inserts (" + Code.where(inserts.get(0))
                                        + "): two concurrent duplicates both pass the check."
                                        + " Insert first and let the unique constraint decide (INSERT ... ON CONFLICT DO NOTHING and look at the"
                                        + " row count, or catch the duplicate-key error), or mark it @IdempotencyExempt(rules ="
                                        + " IdempotencyExempt.INSERT_FIRST, reason = \"...\").");
                    }
                })
                .allowEmptyShould(true)
                .as("idempotency relies on the unique constraint, not on select-then-insert (rule "
                        + IdempotencyExempt.INSERT_FIRST + ")");
    }

    // ---------------------------------------------------------------- helpers

    private static DescribedPredicate<JavaCodeUnit> notInPackage(String pkg) {
        return DescribedPredicate.describe(
                "are not in " + pkg, u -> !u.getOwner().getPackageName().startsWith(pkg));
    }

    private static void violated(ConditionEvents events, JavaCodeUnit unit, String message) {
        events.add(SimpleConditionEvent.violated(unit, message));
    }
}
