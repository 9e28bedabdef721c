package dev.outbox.archunit;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.codeUnits;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.AccessTarget;
import com.tngtech.archunit.core.domain.JavaAccess;
import com.tngtech.archunit.core.domain.JavaAnnotation;
import com.tngtech.archunit.core.domain.JavaCall;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaCodeUnit;
import com.tngtech.archunit.core.domain.JavaCodeUnitAccess;
import com.tngtech.archunit.core.domain.JavaCodeUnitReference;
import com.tngtech.archunit.core.domain.JavaEnumConstant;
import com.tngtech.archunit.core.domain.JavaFieldAccess;
import com.tngtech.archunit.core.domain.JavaMethod;
import com.tngtech.archunit.core.domain.JavaModifier;
import com.tngtech.archunit.lang.ArchCondition;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.CompositeArchRule;
import com.tngtech.archunit.lang.ConditionEvents;
import com.tngtech.archunit.lang.SimpleConditionEvent;
import dev.outbox.core.IdempotencyExempt;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

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
 * <p>The rules read compiled code, so they see calls, method references, field reads, annotations
 * and caught exceptions, not argument values or control flow; each says below what it matches, and
 * the module's README lists what they cannot see. Every rule has the same escape
 * hatch: {@link IdempotencyExempt} on the method or class, naming the rule and a reason; a blank
 * reason does not count. To adopt them on a code base with many findings, freeze the current ones
 * with ArchUnit's {@code FreezingArchRule.freeze(rule)} and fix them over time.
 */
public final class IdempotencyRules {

    /**
     * What counts as the dedup primitive by default: consumer-dedup's {@code IdempotentConsumer} (the
     * handler given to its builder), and {@code ProcessedMessages} and the starter's {@code
     * ProcessedMessagesTemplate} (their {@code claim} methods, for a {@code @KafkaListener} of your
     * own). Other calls on them claim nothing.
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

    /** The budgeted client's sends. */
    private static final List<Code.Api> IDEMPOTENT_SEND =
            List.of(Code.api("dev.outbox.http.client.IdempotentHttpClient", "send*"));

    /**
     * One call that sends a POST or PATCH through a client that neither keys nor budgets it. Owners
     * are interfaces where the library has one, so that a call through the interface is seen as well
     * as one through its implementations ({@code RestOperations} covers {@code RestTemplate}).
     */
    private static final List<Code.Api> DIRECT_NON_IDEMPOTENT = List.of(
            Code.api(
                    "org.springframework.web.client.RestOperations",
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

    /** Calls that send a request whose HTTP method is an argument (or comes with a {@code RequestEntity}). */
    private static final List<Code.Api> SEND_BY_METHOD = List.of(
            Code.api("org.springframework.web.client.RestOperations", "exchange", "execute"),
            Code.api("org.springframework.web.client.RestTemplate", "exchange", "execute"),
            Code.api("org.springframework.web.client.RestClient", "method"),
            Code.api("org.springframework.web.reactive.function.client.WebClient", "method"),
            Code.api("org.springframework.http.client.ClientHttpRequestFactory", "createRequest"));

    private static final String HTTP_METHOD = "org.springframework.http.HttpMethod";

    private static final Set<String> NON_IDEMPOTENT_METHODS = Set.of("POST", "PATCH");

    /** {@code RequestEntity}'s builders of a POST or PATCH, for {@code RestTemplate.exchange}. */
    private static final List<Code.Api> REQUEST_ENTITY_POST =
            List.of(Code.api("org.springframework.http.RequestEntity", "post", "patch"));

    // the annotations of interface clients, by name: the module depends on neither Spring nor Feign
    private static final String HTTP_EXCHANGE = "org.springframework.web.service.annotation.HttpExchange";
    private static final String POST_EXCHANGE = "org.springframework.web.service.annotation.PostExchange";
    private static final String PATCH_EXCHANGE = "org.springframework.web.service.annotation.PatchExchange";
    private static final String REQUEST_MAPPING = "org.springframework.web.bind.annotation.RequestMapping";
    private static final String POST_MAPPING = "org.springframework.web.bind.annotation.PostMapping";
    private static final String PATCH_MAPPING = "org.springframework.web.bind.annotation.PatchMapping";
    private static final String REQUEST_HEADER = "org.springframework.web.bind.annotation.RequestHeader";
    private static final String FEIGN_CLIENT = "org.springframework.cloud.openfeign.FeignClient";
    private static final String FEIGN_REQUEST_LINE = "feign.RequestLine";

    /**
     * Outbound POST and PATCH calls go through {@code dev.outbox.http.client.IdempotentHttpClient},
     * which mints one {@code Idempotency-Key} per operation and reuses it on every attempt, and
     * retries under a budget and a breaker. Flags:
     *
     * <ul>
     *   <li>a method that builds a POST (or a request by method name) with {@code
     *       java.net.http.HttpRequest.Builder} and sends it with {@code
     *       java.net.http.HttpClient.send/sendAsync}; or builds one in a class none of whose code
     *       sends through {@code IdempotentHttpClient} (built here, sent elsewhere by a plain
     *       client);
     *   <li>any call of Spring's {@code RestOperations.postFor* / patchForObject} (on {@code
     *       RestTemplate} or the interface), {@code
     *       RestClient.post/patch}, {@code WebClient.post/patch}, OkHttp's {@code
     *       Request.Builder.post/patch} or Apache HttpClient's {@code HttpPost/HttpPatch};
     *   <li>a method that names {@code HttpMethod.POST} or {@code PATCH} (or builds a {@code
     *       RequestEntity.post/patch}) and calls {@code RestOperations.exchange/execute} (on {@code
     *       RestTemplate} or the interface), {@code
     *       RestClient.method}, {@code WebClient.method} or {@code
     *       ClientHttpRequestFactory.createRequest};
     *   <li>a POST or PATCH method of an interface client: a Spring HTTP interface ({@code
     *       @PostExchange}, {@code @PatchExchange}, {@code @HttpExchange(method = ...)}) or an
     *       OpenFeign {@code @RequestLine}, unless a class among the imported ones implements the
     *       interface (then it is the service's own endpoint); a {@code @PostMapping}, {@code
     *       @PatchMapping} or {@code @RequestMapping(method = POST/PATCH)} method of an interface
     *       annotated {@code @FeignClient}, or extended by one. Such a method that takes the key as a
     *       parameter, {@code @RequestHeader("Idempotency-Key")}, passes.
     * </ul>
     *
     * The client's own package is left out. Escape hatch: {@code @IdempotencyExempt(rules =
     * OUTBOUND_HTTP, reason = "...")}, e.g. for a call whose target takes no key and changes nothing.
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
                        if (!built.isEmpty()) {
                            List<JavaCall<?>> sent = Code.calls(unit, JDK_SEND);
                            if (!sent.isEmpty()) {
                                violated(
                                        events,
                                        unit,
                                        Code.name(unit) + " builds a non-idempotent request ("
                                                + Code.where(built.get(0))
                                                + ") and sends it with " + Code.where(sent.get(0))
                                                + ": no Idempotency-Key, no retry budget." + HTTP_FIX);
                            } else if (!sendsThroughTheIdempotentClient(unit.getOwner())) {
                                violated(
                                        events,
                                        unit,
                                        Code.name(unit) + " builds a non-idempotent request ("
                                                + Code.where(built.get(0))
                                                + ") and " + unit.getOwner().getSimpleName()
                                                + " never sends through IdempotentHttpClient: sent by a plain client, it"
                                                + " carries no Idempotency-Key and has no retry budget." + HTTP_FIX);
                            }
                        }
                        for (JavaCall<?> call : Code.calls(unit, DIRECT_NON_IDEMPOTENT)) {
                            violated(
                                    events,
                                    unit,
                                    Code.name(unit) + " sends a POST/PATCH with " + Code.where(call)
                                            + ", outside the idempotent client." + HTTP_FIX);
                        }
                        List<JavaAccess<?>> named = postOrPatchNamed(unit);
                        List<JavaCall<?>> byMethod = Code.calls(unit, SEND_BY_METHOD);
                        if (!named.isEmpty() && !byMethod.isEmpty()) {
                            violated(
                                    events,
                                    unit,
                                    Code.name(unit) + " sends a POST/PATCH with " + Code.where(byMethod.get(0)) + " ("
                                            + Code.where(named.get(0)) + "), outside the idempotent client."
                                            + HTTP_FIX);
                        }
                        interfaceClientMapping(unit)
                                .ifPresent(mapping -> violated(
                                        events,
                                        unit,
                                        Code.name(unit) + " is a " + mapping.method() + " of "
                                                + mapping.client() + " (@" + mapping.annotation()
                                                + "): sent with no Idempotency-Key and no retry budget."
                                                + INTERFACE_CLIENT_FIX));
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

    private static final String INTERFACE_CLIENT_FIX =
            " Take the key as a parameter, @RequestHeader(\"Idempotency-Key\") String idempotencyKey, minted once per"
                    + " operation and passed again on every attempt; or send the request with"
                    + " dev.outbox.http.client.IdempotentHttpClient (one key per operation, retries under a budget);"
                    + " or mark the method @IdempotencyExempt(rules = IdempotencyExempt.OUTBOUND_HTTP, reason = \"...\").";

    /** @return whether {@code type}, or a class it is nested in, sends through the idempotent client */
    private static boolean sendsThroughTheIdempotentClient(JavaClass type) {
        for (Optional<JavaClass> c = Optional.of(type);
                c.isPresent();
                c = c.get().getEnclosingClass()) {
            for (JavaCodeUnit u : c.get().getCodeUnits()) {
                if (!Code.calls(u, IDEMPOTENT_SEND).isEmpty()) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * @return where {@code unit} names a POST or PATCH for a Spring client: reads of {@code
     *     HttpMethod.POST/PATCH}, calls of {@code RequestEntity.post/patch}; in line order
     */
    private static List<JavaAccess<?>> postOrPatchNamed(JavaCodeUnit unit) {
        List<JavaAccess<?>> out = new ArrayList<>();
        for (JavaFieldAccess read : unit.getFieldAccesses()) {
            if (read.getTarget().getOwner().getName().equals(HTTP_METHOD)
                    && NON_IDEMPOTENT_METHODS.contains(read.getTarget().getName())) {
                out.add(read);
            }
        }
        out.addAll(Code.calls(unit, REQUEST_ENTITY_POST));
        out.sort(Comparator.<JavaAccess<?>>comparingInt(JavaAccess::getLineNumber)
                .thenComparing(a -> a.getTarget().getFullName()));
        return out;
    }

    /** A POST or PATCH an interface client's method sends: the method, the annotation saying so, the client. */
    private record ClientMapping(String method, String annotation, String client) {}

    /**
     * @return the POST or PATCH that {@code unit}, a method of an interface client, sends without a
     *     key parameter; empty for anything else
     */
    private static Optional<ClientMapping> interfaceClientMapping(JavaCodeUnit unit) {
        JavaClass owner = unit.getOwner();
        if (!owner.isInterface() || !(unit instanceof JavaMethod) || takesTheIdempotencyKey(unit)) {
            return Optional.empty();
        }
        for (JavaAnnotation<?> a : unit.getAnnotations()) {
            Mapped mapped = mapped(a, 0);
            if (mapped == null || !NON_IDEMPOTENT_METHODS.contains(mapped.method())) {
                continue;
            }
            String annotation = a.getRawType().getSimpleName();
            if (mapped.springMvc()) {
                // Spring MVC's mappings also describe the service's own endpoints: only a Feign client sends them
                Optional<JavaClass> feign = Stream.concat(Stream.of(owner), owner.getAllSubclasses().stream())
                        .filter(c -> c.isAnnotatedWith(FEIGN_CLIENT))
                        .findFirst();
                if (feign.isPresent()) {
                    return Optional.of(new ClientMapping(
                            mapped.method(),
                            annotation,
                            "the OpenFeign client " + feign.get().getSimpleName()));
                }
            } else if (owner.getAllSubclasses().stream().allMatch(JavaClass::isInterface)) {
                // an interface a class of the service implements is the service's own endpoint
                return Optional.of(new ClientMapping(mapped.method(), annotation, "an HTTP client interface"));
            }
        }
        return Optional.empty();
    }

    /** The HTTP method an annotation maps to, and whether it is one of Spring MVC's mappings. */
    private record Mapped(String method, boolean springMvc) {}

    /** @return what {@code a}, or an annotation it is annotated with, maps to; null when none */
    private static Mapped mapped(JavaAnnotation<?> a, int depth) {
        String name = a.getRawType().getName();
        return switch (name) {
            case POST_EXCHANGE -> new Mapped("POST", false);
            case PATCH_EXCHANGE -> new Mapped("PATCH", false);
            case POST_MAPPING -> new Mapped("POST", true);
            case PATCH_MAPPING -> new Mapped("PATCH", true);
            case HTTP_EXCHANGE -> new Mapped(upper(a.get("method").orElse("")), false);
            case REQUEST_MAPPING -> new Mapped(requestMappingMethod(a), true);
            case FEIGN_REQUEST_LINE -> new Mapped(requestLineMethod(a), false);
            default -> depth >= 3 || name.startsWith("java.") ? null : metaMapped(a, depth);
        };
    }

    /** @return POST or PATCH when {@code @RequestMapping} names one of them, else another method or "" */
    private static String requestMappingMethod(JavaAnnotation<?> a) {
        Object methods = a.get("method").orElse(new Object[0]);
        Object[] list = methods instanceof Object[] array ? array : new Object[] {methods};
        String found = "";
        for (Object m : list) {
            String method = m instanceof JavaEnumConstant constant ? constant.name() : upper(m);
            if (NON_IDEMPOTENT_METHODS.contains(method)) {
                return method;
            }
            found = method;
        }
        return found;
    }

    /** @return the method of Feign's {@code @RequestLine("POST /charges")} */
    private static String requestLineMethod(JavaAnnotation<?> a) {
        String line = upper(a.get("value").orElse("")).strip();
        int space = line.indexOf(' ');
        return space < 0 ? line : line.substring(0, space);
    }

    /** @return what an annotation {@code a} is annotated with maps to; null when none */
    private static Mapped metaMapped(JavaAnnotation<?> a, int depth) {
        for (JavaAnnotation<?> meta : a.getRawType().getAnnotations()) {
            Mapped mapped = mapped(meta, depth + 1);
            if (mapped != null) {
                return mapped;
            }
        }
        return null;
    }

    private static String upper(Object value) {
        return String.valueOf(value).toUpperCase(Locale.ROOT);
    }

    /** @return whether a parameter of {@code unit} is the {@code Idempotency-Key} request header */
    private static boolean takesTheIdempotencyKey(JavaCodeUnit unit) {
        for (Set<? extends JavaAnnotation<?>> annotations : unit.getParameterAnnotations()) {
            for (JavaAnnotation<?> a : annotations) {
                if (!a.getRawType().getName().equals(REQUEST_HEADER)) {
                    continue;
                }
                for (String attribute : List.of("value", "name")) {
                    if ("Idempotency-Key"
                            .equalsIgnoreCase(String.valueOf(a.get(attribute).orElse("")))) {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    // ---------------------------------------------------------------- retry budget

    /** Calls that run code under a retry: the method making them is the one that retries. */
    private static final List<Code.Api> RETRY_RUNS = List.of(
            Code.api("io.github.resilience4j.retry.Retry", "execute*", "decorate*", "context", "asyncContext"),
            Code.api("io.github.resilience4j.reactor.retry.RetryOperator"),
            Code.api("io.github.resilience4j.rxjava3.retry.transformer.RetryTransformer"),
            Code.api("org.springframework.retry.RetryOperations", "execute"),
            Code.api("org.springframework.retry.support.RetryTemplate", "execute"),
            Code.api("org.springframework.core.retry.RetryOperations", "execute", "invoke"),
            Code.api("org.springframework.core.retry.RetryTemplate", "execute", "invoke"),
            Code.api("reactor.core.publisher.Mono", "retry", "retryWhen"),
            Code.api("reactor.core.publisher.Flux", "retry", "retryWhen"));

    /** Calls that set a retry up (to run elsewhere): a {@code Retry} built for a field or a bean. */
    private static final List<Code.Api> RETRY_SETUP = List.of(
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

    /** How deep a hand-written loop's wait is looked for in helpers of its class. */
    private static final int SLEEP_HELPER_DEPTH = 4;

    /** The most calls a helper of a retry loop makes and still counts as its wait. */
    private static final int WAIT_HELPER_CALLS = 12;

    private static final List<Code.Api> BUDGET_APIS = List.of(
            Code.api("dev.outbox.core.retry.RetryBudget"),
            Code.api("io.github.resilience4j.circuitbreaker.CircuitBreaker"),
            Code.api("io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry"),
            Code.api("io.github.resilience4j.reactor.circuitbreaker.operator.CircuitBreakerOperator"),
            Code.api("io.github.resilience4j.rxjava3.circuitbreaker.operator.CircuitBreakerOperator"),
            Code.api("org.springframework.retry.policy.CircuitBreakerRetryPolicy"));

    /** A field of these types read, or a method returning one called, counts as using the budget. */
    private static final Set<String> BUDGET_TYPES = Set.of(
            "dev.outbox.core.retry.RetryBudget",
            "io.github.resilience4j.circuitbreaker.CircuitBreaker",
            "org.springframework.retry.policy.CircuitBreakerRetryPolicy");

    private static final Set<String> BUDGET_ANNOTATIONS = Set.of(
            "io.github.resilience4j.circuitbreaker.annotation.CircuitBreaker",
            "org.springframework.retry.annotation.CircuitBreaker");

    /**
     * Retry loops are limited by a retry budget or a circuit breaker (guarantee G6), so that a failing
     * dependency is not hammered by every caller's retries at once. The method that retries must
     * itself use {@code dev.outbox.core.retry.RetryBudget}, a Resilience4j {@code CircuitBreaker}
     * (called, read from a field, or through {@code CircuitBreakerRegistry} or {@code
     * CircuitBreakerOperator}), or Spring Retry's {@code CircuitBreakerRetryPolicy}, in its body or
     * its lambdas; or carry (itself or on its class) Resilience4j's or Spring Retry's
     * {@code @CircuitBreaker}. A budget or breaker elsewhere in the class does not guard it.
     * Retrying means:
     *
     * <ul>
     *   <li>running code under a retry: Resilience4j {@code Retry.execute* / decorate* / context},
     *       its {@code RetryOperator} or {@code RetryTransformer}; Spring Retry's or Spring
     *       Framework's {@code RetryTemplate.execute} ({@code invoke}); Reactor's {@code
     *       Mono/Flux.retry} and {@code retryWhen};
     *   <li>a {@code @Retry} or {@code @Retryable} annotation on the method, or on an annotation of
     *       the method (a team's own); on the class, for each of its public methods;
     *   <li>a hand-written loop, recognised as a method that catches an exception other than {@code
     *       InterruptedException} and sleeps ({@code Thread.sleep}, {@code TimeUnit.sleep}) in the
     *       handler or after it: itself, or in a helper of its class it calls there that does little
     *       but wait (at most 12 calls, catching nothing but {@code InterruptedException}; it may
     *       wait through another such helper);
     *   <li>setting a retry up ({@code Retry.of}, {@code RetryConfig}, {@code RetryRegistry}, a
     *       {@code RetryTemplate} built) without running it: that one passes when some code of its
     *       class uses a budget or breaker, the code that runs the retry being judged where it is.
     * </ul>
     *
     * A loop that retries without sleeping at all, and a wait in another class or in a larger helper,
     * are not recognised.
     * Escape hatch: {@code @IdempotencyExempt(rules = RETRY_BUDGET, reason = "...")}, e.g. for a
     * bounded start-up probe.
     *
     * @return the rule
     */
    public static ArchRule retriesHaveABudget() {
        return codeUnits()
                .should(new ArchCondition<JavaCodeUnit>("retry only under a retry budget or a circuit breaker") {
                    @Override
                    public void check(JavaCodeUnit unit, ConditionEvents events) {
                        if (Code.exempt(unit, IdempotencyExempt.RETRY_BUDGET)
                                || Code.annotated(unit, BUDGET_ANNOTATIONS)) {
                            return;
                        }
                        String how = null;
                        boolean setUpOnly = false;
                        List<JavaCall<?>> runs = Code.calls(unit, RETRY_RUNS);
                        List<JavaCall<?>> setup = Code.calls(unit, RETRY_SETUP);
                        if (!runs.isEmpty()) {
                            how = "uses " + Code.where(runs.get(0));
                        } else if (Code.metaAnnotated(unit, RETRY_ANNOTATIONS)) {
                            how = "is annotated to retry";
                        } else if (retriedByItsClass(unit)) {
                            how = "is retried by the annotation on its class";
                        } else if (!setup.isEmpty()) {
                            how = "uses " + Code.where(setup.get(0));
                            setUpOnly = true;
                        } else {
                            how = handWrittenLoop(unit);
                        }
                        if (how == null || (setUpOnly ? classUsesABudget(unit.getOwner()) : usesABudget(unit))) {
                            return;
                        }
                        violated(
                                events,
                                unit,
                                Code.name(unit) + " " + how + " without a retry budget or circuit breaker "
                                        + (setUpOnly
                                                ? "in " + unit.getOwner().getSimpleName()
                                                : classUsesABudget(unit.getOwner())
                                                        ? "in that method (the one elsewhere in "
                                                                + unit.getOwner()
                                                                        .getSimpleName()
                                                                + " does not guard this retry)"
                                                        : "in that method")
                                        + ". Guard the retried call with dev.outbox.core.retry.RetryBudget"
                                        + " (tryAcquireRetry() before each retry) or a circuit breaker (a Resilience4j"
                                        + " CircuitBreaker around it, @CircuitBreaker on the method), and back off with full"
                                        + " jitter (dev.outbox.core.retry.Backoff); or mark it @IdempotencyExempt(rules ="
                                        + " IdempotencyExempt.RETRY_BUDGET, reason = \"...\").");
                    }
                })
                .allowEmptyShould(true)
                .as("retries run under a retry budget or a circuit breaker (rule " + IdempotencyExempt.RETRY_BUDGET
                        + ")");
    }

    /** @return whether {@code unit} is a public method that a retry annotation on its class retries */
    private static boolean retriedByItsClass(JavaCodeUnit unit) {
        Set<JavaModifier> modifiers = unit.getModifiers();
        return unit instanceof JavaMethod
                && modifiers.contains(JavaModifier.PUBLIC)
                && !modifiers.contains(JavaModifier.STATIC)
                && !modifiers.contains(JavaModifier.SYNTHETIC)
                && !modifiers.contains(JavaModifier.BRIDGE)
                && !Set.of("equals", "hashCode", "toString").contains(unit.getName())
                && Code.metaAnnotated(unit.getOwner(), RETRY_ANNOTATIONS);
    }

    /** @return how {@code unit} is a hand-written retry loop (catches, then sleeps), or null */
    private static String handWrittenLoop(JavaCodeUnit unit) {
        List<JavaCall<?>> waits = new ArrayList<>();
        Map<JavaCall<?>, JavaCall<?>> sleepBehind = new HashMap<>();
        for (JavaCall<?> call : Code.calls(unit)) {
            if (SLEEPS.stream().anyMatch(a -> a.matches(call.getTarget()))) {
                waits.add(call);
            } else if (call.getTargetOwner().equals(unit.getOwner())) {
                Optional<? extends JavaCodeUnit> helper = call.getTarget().resolveMember();
                JavaCall<?> sleep = helper.isPresent()
                        ? sleepIn(helper.get(), SLEEP_HELPER_DEPTH, new HashSet<>(Set.of(unit)))
                        : null;
                if (sleep != null) {
                    waits.add(call);
                    sleepBehind.put(call, sleep);
                }
            }
        }
        return Code.afterCatching(unit, waits, t -> !t.isAssignableTo(InterruptedException.class))
                .map(wait -> "is a hand-written retry loop (catches and sleeps, "
                        + (sleepBehind.containsKey(wait)
                                ? "in " + Code.where(wait) + ", which reaches " + Code.where(sleepBehind.get(wait))
                                : Code.where(wait))
                        + ")")
                .orElse(null);
    }

    /**
     * @return the sleep of {@code unit} when it is a wait: a method that does little else (at most
     *     {@link #WAIT_HELPER_CALLS} calls, no try block catching more than {@code
     *     InterruptedException}) and sleeps, itself or through another such method of its class up to
     *     {@code depth} calls deep; else null. A larger method that sleeps somewhere (a poll loop, a
     *     whole run) is not the wait of its caller's retry.
     */
    private static JavaCall<?> sleepIn(JavaCodeUnit unit, int depth, Set<JavaCodeUnit> seen) {
        if (!seen.add(unit)
                || unit.getCallsFromSelf().size() > WAIT_HELPER_CALLS
                || Code.catches(unit, t -> !t.isAssignableTo(InterruptedException.class))) {
            return null;
        }
        List<JavaCall<?>> sleeps = Code.calls(unit, SLEEPS);
        if (!sleeps.isEmpty()) {
            return sleeps.get(0);
        }
        if (depth > 1) {
            for (JavaCall<?> call : Code.calls(unit)) {
                if (call.getTargetOwner().equals(unit.getOwner())) {
                    Optional<? extends JavaCodeUnit> helper = call.getTarget().resolveMember();
                    JavaCall<?> sleep = helper.isPresent() ? sleepIn(helper.get(), depth - 1, seen) : null;
                    if (sleep != null) {
                        return sleep;
                    }
                }
            }
        }
        return null;
    }

    /**
     * @return whether {@code unit} uses a retry budget or breaker: calls one, reads a field holding
     *     one, calls a method returning one, or refers to a method of one (lambdas included, which
     *     ArchUnit counts as the method's own code)
     */
    private static boolean usesABudget(JavaCodeUnit unit) {
        for (JavaCall<?> call : unit.getCallsFromSelf()) {
            if (BUDGET_APIS.stream().anyMatch(a -> a.matches(call.getTarget()))
                    || isBudget(call.getTarget().getRawReturnType())) {
                return true;
            }
        }
        for (JavaCodeUnitReference<?> reference : unit.getCodeUnitReferencesFromSelf()) {
            if (BUDGET_APIS.stream().anyMatch(a -> a.matches(reference.getTarget()))) {
                return true;
            }
        }
        return unit.getFieldAccesses().stream()
                .anyMatch(f -> isBudget(f.getTarget().getRawType()));
    }

    private static boolean isBudget(JavaClass type) {
        return BUDGET_TYPES.stream().anyMatch(b -> type.getName().equals(b) || type.isAssignableTo(b));
    }

    /** @return whether some code of {@code type} uses a budget or breaker, or carries a breaker annotation */
    private static boolean classUsesABudget(JavaClass type) {
        return Code.metaAnnotated(type, BUDGET_ANNOTATIONS)
                || type.getCodeUnits().stream()
                        .anyMatch(u -> usesABudget(u) || Code.metaAnnotated(u, BUDGET_ANNOTATIONS));
    }

    // ---------------------------------------------------------------- listeners and dedup

    /**
     * What makes a method a listener, directly or through an annotation of the method that carries
     * one (Spring Kafka reads both): {@code @KafkaListener}, {@code @KafkaHandler}, and {@code
     * @KafkaListeners}, the container the compiler stores for a repeated {@code @KafkaListener}.
     */
    private static final Set<String> LISTENER_ANNOTATIONS = Set.of(
            "org.springframework.kafka.annotation.KafkaListener",
            "org.springframework.kafka.annotation.KafkaListeners",
            "org.springframework.kafka.annotation.KafkaHandler");

    private static final List<Code.Api> POLL = List.of(Code.api("org.apache.kafka.clients.consumer.Consumer", "poll"));

    /**
     * Database writes: jOOQ, JDBC, Spring JDBC (also {@code JdbcClient} and {@code SimpleJdbcInsert}),
     * JPA, Spring Data. Spring JDBC is named by its
     * interfaces, which cover {@code JdbcTemplate} and {@code NamedParameterJdbcTemplate}; its {@code
     * execute(String)} runs any SQL and counts as a write, like JDBC's {@code Statement.execute} and
     * jOOQ's {@code DSLContext.execute}, while the {@code execute} overloads given a callback are
     * judged by what the callback calls (a lambda or method reference is followed like the
     * listener's own code).
     */
    static final List<Code.Api> DB_WRITES = List.of(
            Code.api(JOOQ, "insertInto", "update", "delete", "deleteFrom", "mergeInto", "execute", "batch*"),
            Code.api(
                    "java.sql.Statement",
                    "executeUpdate",
                    "executeLargeUpdate",
                    "executeBatch",
                    "executeLargeBatch",
                    "execute"),
            Code.api(
                    "org.springframework.jdbc.core.JdbcOperations",
                    "update",
                    "batchUpdate",
                    "execute(java.lang.String)"),
            Code.api("org.springframework.jdbc.core.namedparam.NamedParameterJdbcOperations", "update", "batchUpdate"),
            Code.api("org.springframework.jdbc.core.simple.JdbcClient$StatementSpec", "update"),
            Code.api("org.springframework.jdbc.core.simple.SimpleJdbcInsertOperations", "execute*"),
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
     * The claims of the default dedup primitives: a call of anything else on them (a helper such as
     * {@code ProcessedMessages.messageId}, a getter) claims nothing. {@code IdempotentConsumer}
     * dedups the records of the handler given to its builder.
     */
    private static final Map<String, Code.Api> CLAIMS = Map.of(
            "dev.outbox.consumer.ProcessedMessages", Code.api("dev.outbox.consumer.ProcessedMessages", "claim*"),
            "dev.outbox.spring.ProcessedMessagesTemplate",
                    Code.api("dev.outbox.spring.ProcessedMessagesTemplate", "claim*"),
            "dev.outbox.consumer.IdempotentConsumer",
                    Code.api("dev.outbox.consumer.IdempotentConsumer$Builder", "handler"));

    /** How deep the listener rule follows calls into the application's own code. */
    private static final int LISTENER_DEPTH = 8;

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
     * skipped. Listeners are methods annotated {@code @KafkaListener} (once or repeated) or {@code
     * @KafkaHandler}, or annotated with an annotation of their own that carries one of them (a team's
     * {@code @OrderEvents} meta-annotated {@code @KafkaListener}), and methods that call {@code
     * Consumer.poll} (a hand-written loop). The rule follows their calls and method references into
     * the application's own classes (not into libraries, up to 8 calls deep, lambdas included; a call
     * on an interface or abstract method into its implementations among the imported classes); when
     * it reaches a database write (jOOQ {@code insertInto/update/delete...}, JDBC {@code
     * executeUpdate/execute...}, Spring's {@code JdbcOperations.update/batchUpdate/execute(String)}
     * and {@code NamedParameterJdbcOperations.update/batchUpdate}, on the interfaces or their
     * templates, {@code JdbcClient}'s {@code update}, JPA {@code persist/merge/remove}, Spring Data
     * {@code save/delete}) and no claim through the dedup primitive, it
     * flags the listener. The claim of the default primitives is {@code ProcessedMessages.claim},
     * {@code ProcessedMessagesTemplate.claim}, and the handler given to {@code
     * IdempotentConsumer.builder()}: any other call on them (such as {@code
     * ProcessedMessages.messageId}) claims nothing. Handlers given to {@code IdempotentConsumer} are
     * never listeners in this sense. It cannot see that the claim and the write share a transaction,
     * nor that the write happens only when the claim is new; the dedup primitive's API makes that the
     * way to use it. Escape hatch: {@code @IdempotencyExempt(rules = LISTENER_DEDUP, reason =
     * "...")}, e.g. for a listener whose write is idempotent by itself (an upsert of the latest state).
     *
     * @param dedup what counts as the dedup primitive: fully qualified class names (a call of any of
     *     their methods is the claim, except for the defaults', whose claim is known), a class name
     *     with the claim's method after {@code #} ({@code com.example.Dedup#claim}, or a prefix
     *     {@code #claim*}), or packages ending in {@code ..} (every class in and below them)
     * @return the rule
     * @throws IllegalArgumentException when none is given, or one names no method after {@code #}
     */
    public static ArchRule kafkaListenersWriteThroughDedup(String... dedup) {
        Objects.requireNonNull(dedup, "dedup may not be null");
        if (dedup.length == 0) {
            throw new IllegalArgumentException(
                    "give at least one dedup class or package, e.g. " + DEFAULT_DEDUP.get(1));
        }
        for (String d : dedup) {
            Objects.requireNonNull(d, "a dedup class may not be null");
            if (d.endsWith("#") || d.startsWith("#")) {
                throw new IllegalArgumentException("give the class and the claim's method around '#', e.g. "
                        + DEFAULT_DEDUP.get(1) + "#claim; got " + d);
            }
        }
        List<String> primitives = List.of(dedup);
        return codeUnits()
                .should(
                        new ArchCondition<JavaCodeUnit>(
                                "write to the database only through the dedup primitive " + primitives) {
                            @Override
                            public void check(JavaCodeUnit unit, ConditionEvents events) {
                                boolean listener = Code.metaAnnotated(unit, LISTENER_ANNOTATIONS)
                                        || !Code.calls(unit, POLL).isEmpty();
                                if (!listener || Code.exempt(unit, IdempotencyExempt.LISTENER_DEDUP)) {
                                    return;
                                }
                                JavaAccess<?> write = null;
                                boolean deduplicated = false;
                                Deque<JavaCodeUnit> todo = new ArrayDeque<>(List.of(unit));
                                Set<JavaCodeUnit> seen = new HashSet<>();
                                for (int depth = 0; depth <= LISTENER_DEPTH && !todo.isEmpty(); depth++) {
                                    Deque<JavaCodeUnit> next = new ArrayDeque<>();
                                    for (JavaCodeUnit u : todo) {
                                        if (!seen.add(u)) {
                                            continue;
                                        }
                                        next.addAll(Code.lambdasOf(u));
                                        for (JavaCodeUnitAccess<?> access : callsAndReferences(u)) {
                                            AccessTarget.CodeUnitAccessTarget target = access.getTarget();
                                            if (isClaim(target, primitives)) {
                                                deduplicated = true;
                                            } else if (write == null
                                                    && DB_WRITES.stream().anyMatch(a -> a.matches(target))) {
                                                write = access;
                                            } else if (!isLibrary(target.getOwner())) {
                                                target.resolveMember().ifPresent(m -> {
                                                    next.add(m);
                                                    next.addAll(implementations(target.getOwner(), m));
                                                });
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
                                                    + ") without a claim through the dedup primitive " + primitives
                                                    + ": a redelivered record writes again. Claim the record's message id in"
                                                    + " the write's transaction and write only when the claim is new"
                                                    + " (dev.outbox.consumer.ProcessedMessages.claim, or"
                                                    + " ProcessedMessagesTemplate.claim in a @Transactional listener), or handle"
                                                    + " the record through dev.outbox.consumer.IdempotentConsumer; or mark it"
                                                    + " @IdempotencyExempt(rules = IdempotencyExempt.LISTENER_DEDUP, reason ="
                                                    + " \"...\").");
                                }
                            }
                        })
                .allowEmptyShould(true)
                .as("Kafka listeners write to the database through the dedup primitive (rule "
                        + IdempotencyExempt.LISTENER_DEDUP + ")");
    }

    /** @return the calls and the method and constructor references of {@code unit} */
    private static List<JavaCodeUnitAccess<?>> callsAndReferences(JavaCodeUnit unit) {
        List<JavaCodeUnitAccess<?>> out = new ArrayList<>(Code.calls(unit));
        unit.getCodeUnitReferencesFromSelf().stream()
                .sorted(Comparator.<JavaCodeUnitReference<?>>comparingInt(JavaAccess::getLineNumber)
                        .thenComparing(r -> r.getTarget().getFullName()))
                .forEach(out::add);
        return out;
    }

    /**
     * @return for an interface or abstract {@code method} called on {@code owner}, the methods that
     *     implement it in the imported subclasses of {@code owner}; else nothing
     */
    private static List<JavaCodeUnit> implementations(JavaClass owner, JavaCodeUnit method) {
        if (!(method instanceof JavaMethod)
                || !(method.getOwner().isInterface() || method.getModifiers().contains(JavaModifier.ABSTRACT))) {
            return List.of();
        }
        List<String> parameters =
                method.getRawParameterTypes().stream().map(JavaClass::getName).toList();
        List<JavaCodeUnit> out = new ArrayList<>();
        for (JavaClass sub : owner.getAllSubclasses()) {
            for (JavaMethod m : sub.getMethods()) {
                if (m.getName().equals(method.getName())
                        && !m.getModifiers().contains(JavaModifier.ABSTRACT)
                        && m.getRawParameterTypes().stream()
                                .map(JavaClass::getName)
                                .toList()
                                .equals(parameters)) {
                    out.add(m);
                }
            }
        }
        return out;
    }

    /** @return whether {@code target} is a claim through one of the {@code primitives} */
    private static boolean isClaim(AccessTarget.CodeUnitAccessTarget target, List<String> primitives) {
        JavaClass owner = target.getOwner();
        for (String p : primitives) {
            int hash = p.indexOf('#');
            String type = hash < 0 ? p : p.substring(0, hash);
            boolean matches;
            if (type.endsWith("..")) {
                matches = inPackage(owner, type.substring(0, type.length() - 2))
                        && (hash < 0
                                ? knownClaim(owner)
                                        .map(api -> api.matches(target))
                                        .orElse(true)
                                : Code.api(owner.getName(), p.substring(hash + 1))
                                        .matches(target));
            } else if (hash >= 0) {
                matches = Code.api(type, p.substring(hash + 1)).matches(target);
            } else if (CLAIMS.containsKey(type)) {
                matches = CLAIMS.get(type).matches(target);
            } else {
                matches = owner.getName().equals(type) || owner.isAssignableTo(type);
            }
            if (matches) {
                return true;
            }
        }
        return false;
    }

    /** @return the claim of a default primitive that {@code owner} is, or is part of */
    private static Optional<Code.Api> knownClaim(JavaClass owner) {
        return CLAIMS.entrySet().stream()
                .filter(e -> owner.getName().equals(e.getKey())
                        || owner.isAssignableTo(e.getKey())
                        || owner.isAssignableTo(e.getValue().owner()))
                .map(Map.Entry::getValue)
                .findFirst();
    }

    private static boolean inPackage(JavaClass owner, String pkg) {
        return owner.getPackageName().equals(pkg) || owner.getPackageName().startsWith(pkg + ".");
    }

    private static boolean isLibrary(JavaClass owner) {
        String name = owner.getName();
        return LIBRARY_PACKAGES.stream().anyMatch(name::startsWith);
    }

    // ---------------------------------------------------------------- insert first

    private static final List<Code.Api> EXISTENCE_CHECKS = List.of(
            Code.api(JOOQ, "fetchExists", "fetchCount", "selectCount"),
            Code.api("org.springframework.data.repository.Repository", "exists*", "count*"));

    /**
     * Plain JDBC inserts, on {@code PreparedStatement} too. No driver has to report their duplicate
     * key as a duplicate-key type, and PostgreSQL's never does: a single statement's comes as a plain
     * {@code SQLException} (the driver's {@code PSQLException}) with SQLState {@code 23505}, a batch's
     * as a {@code BatchUpdateException} carrying the entry's SQLState and, as its next exception and
     * cause, the entry's own exception. Spring's and jOOQ's inserts translate it, so they are not
     * among these.
     */
    private static final Code.Api JDBC_INSERTS = Code.api(
            "java.sql.Statement",
            "executeUpdate",
            "executeLargeUpdate",
            "execute",
            "executeBatch",
            "executeLargeBatch");

    /** The batches among the plain JDBC inserts: any failure of one is a {@code BatchUpdateException}. */
    private static final Code.Api JDBC_BATCHES = Code.api("java.sql.Statement", "executeBatch", "executeLargeBatch");

    /**
     * Inserts, named by their interfaces where the library has one: {@code Statement} covers {@code
     * PreparedStatement}, {@code JdbcOperations} covers {@code JdbcTemplate}, {@code
     * SimpleJdbcInsertOperations} covers {@code SimpleJdbcInsert}. A name covers all its overloads.
     */
    private static final List<Code.Api> INSERTS = List.of(
            Code.api(JOOQ, "insertInto"),
            JDBC_INSERTS,
            Code.api("org.springframework.jdbc.core.JdbcOperations", "update", "batchUpdate"),
            Code.api("org.springframework.jdbc.core.namedparam.NamedParameterJdbcOperations", "update", "batchUpdate"),
            Code.api("org.springframework.jdbc.core.simple.JdbcClient$StatementSpec", "update"),
            Code.api("org.springframework.jdbc.core.simple.SimpleJdbcInsertOperations", "execute*"),
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

    private static final String SQL_EXCEPTION = "java.sql.SQLException";

    private static final String BATCH_UPDATE_EXCEPTION = "java.sql.BatchUpdateException";

    /**
     * What tells a plain JDBC insert's duplicate from its other failures: the SQLState of the exception
     * or, for a batch, of its next exception.
     */
    private static final List<Code.Api> SQL_STATE = List.of(Code.api(SQL_EXCEPTION, "getSQLState"));

    /**
     * Idempotency checks rely on the unique constraint, never on "select, then insert" (which lets
     * two concurrent duplicates both see "absent" and both insert). Flags a method that calls an
     * existence check (jOOQ {@code fetchExists/fetchCount/selectCount}, a Spring Data repository's
     * {@code exists*} or {@code count*}) and then, further down, an insert (jOOQ {@code insertInto},
     * JDBC {@code Statement.executeUpdate/executeLargeUpdate/execute/executeBatch/executeLargeBatch}
     * (on {@code PreparedStatement} too), Spring's {@code JdbcOperations.update/batchUpdate} and {@code
     * NamedParameterJdbcOperations.update/batchUpdate} (on the interfaces or their templates), {@code
     * JdbcClient}'s {@code StatementSpec.update}, {@code SimpleJdbcInsert}'s {@code execute*} (on the
     * class or {@code SimpleJdbcInsertOperations}), JPA {@code persist}, Spring Data {@code save*}),
     * unless the method handles the conflict the database reports: jOOQ {@code
     * onConflict...} / {@code onDuplicateKey...}, or catching a duplicate-key exception ({@code
     * SQLIntegrityConstraintViolationException}, jOOQ's {@code IntegrityConstraintViolationException},
     * Spring's {@code DataIntegrityViolationException} and subtypes such as {@code
     * DuplicateKeyException}), or, for the plain JDBC inserts, catching the {@code SQLException} the
     * duplicate comes as and reading a SQLState ({@code getSQLState()}, of the exception or of its
     * next exception) in the handler or after it: for a single statement ({@code
     * executeUpdate/executeLargeUpdate/execute}), {@code SQLException} or a subtype other than {@code
     * BatchUpdateException}, such as PostgreSQL's {@code PSQLException}; for a batch ({@code
     * executeBatch/executeLargeBatch}), {@code SQLException}, {@code BatchUpdateException} or a
     * subtype of it. A handler that only wraps or rethrows does not count. Escape hatch: {@code
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
                        // a plain JDBC insert's duplicate comes as a SQLException like any other failure of
                        // it: catching one handles the duplicate only when the handler reads a SQLState
                        List<JavaCall<?>> sqlStates = Code.calls(unit, SQL_STATE);
                        inserts.removeIf(i -> JDBC_INSERTS.matches(i.getTarget())
                                && Code.afterCatching(unit, sqlStates, t -> catchesTheDuplicateOf(i, t))
                                        .isPresent());
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

    /**
     * @return whether a handler of {@code caught} can catch the duplicate of the plain JDBC insert
     *     {@code insert}: for a batch, one of {@code SQLException}, {@code BatchUpdateException} or a
     *     subtype of it; for a single statement, {@code SQLException} or a subtype that is not a
     *     {@code BatchUpdateException}
     */
    private static boolean catchesTheDuplicateOf(JavaCall<?> insert, JavaClass caught) {
        if (!caught.isAssignableTo(SQL_EXCEPTION)) {
            return false;
        }
        boolean batchFailure = caught.isAssignableTo(BATCH_UPDATE_EXCEPTION);
        if (JDBC_BATCHES.matches(insert.getTarget())) {
            return batchFailure || caught.getName().equals(SQL_EXCEPTION);
        }
        return !batchFailure;
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
