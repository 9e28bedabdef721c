package dev.outbox.archunit;

import com.tngtech.archunit.core.domain.AccessTarget;
import com.tngtech.archunit.core.domain.JavaAccess;
import com.tngtech.archunit.core.domain.JavaAnnotation;
import com.tngtech.archunit.core.domain.JavaCall;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaCodeUnit;
import com.tngtech.archunit.core.domain.TryCatchBlock;
import com.tngtech.archunit.core.domain.properties.CanBeAnnotated;
import dev.outbox.core.IdempotencyExempt;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.StringJoiner;
import java.util.function.Predicate;

/** What the rules ask of compiled code: calls by owner and name, annotations, the escape hatch. */
final class Code {
    private Code() {}

    /**
     * A set of methods: owner type (the call's target owner must be assignable to it) and names; an
     * empty name set means every method of that owner, a name ending in {@code *} a prefix, a name
     * with its parameter types ({@code execute(java.lang.String)}: fully qualified raw types,
     * separated by commas without spaces) that one overload.
     */
    record Api(String owner, Set<String> names) {
        boolean matches(AccessTarget.CodeUnitAccessTarget target) {
            // the name first: it is cheap, the owner's hierarchy is not
            return nameMatches(target) && ownerMatches(target.getOwner());
        }

        private boolean nameMatches(AccessTarget.CodeUnitAccessTarget target) {
            if (names.isEmpty()) {
                return true;
            }
            String name = target.getName();
            for (String n : names) {
                boolean matches;
                if (n.endsWith("*")) {
                    matches = name.startsWith(n.substring(0, n.length() - 1));
                } else if (n.endsWith(")")) {
                    matches = n.startsWith(name + "(") && n.equals(signature(target));
                } else {
                    matches = name.equals(n);
                }
                if (matches) {
                    return true;
                }
            }
            return false;
        }

        /** @return {@code name(first.Type,second.Type)} of {@code target} */
        private static String signature(AccessTarget.CodeUnitAccessTarget target) {
            StringJoiner parameters = new StringJoiner(",", target.getName() + "(", ")");
            for (JavaClass type : target.getRawParameterTypes()) {
                parameters.add(type.getName());
            }
            return parameters.toString();
        }

        private boolean ownerMatches(JavaClass type) {
            return type.getName().equals(owner) || type.isAssignableTo(owner);
        }
    }

    static Api api(String owner, String... names) {
        return new Api(owner, Set.of(names));
    }

    /** @return the calls (methods and constructors) of {@code unit} that match any of {@code apis}, in line order */
    static List<JavaCall<?>> calls(JavaCodeUnit unit, List<Api> apis) {
        List<JavaCall<?>> out = new ArrayList<>();
        for (JavaCall<?> call : calls(unit)) {
            if (apis.stream().anyMatch(api -> api.matches(call.getTarget()))) {
                out.add(call);
            }
        }
        return out;
    }

    /** @return every call (methods and constructors) of {@code unit}, in line order */
    static List<JavaCall<?>> calls(JavaCodeUnit unit) {
        List<JavaCall<?>> out = new ArrayList<>(unit.getCallsFromSelf());
        // by line, then by name: calls on one line come in no fixed order, and messages must not change between runs
        out.sort(Comparator.<JavaCall<?>>comparingInt(JavaCall::getLineNumber)
                .thenComparing(c -> c.getTarget().getFullName()));
        return out;
    }

    /** @return whether the unit or its class carries any of the annotations */
    static boolean annotated(JavaCodeUnit unit, Set<String> annotations) {
        return metaAnnotated(unit, annotations) || metaAnnotated(unit.getOwner(), annotations);
    }

    /**
     * @return whether {@code element} carries any of the annotations, or an annotation of its own
     *     that is annotated with one of them (a team's {@code @RetryOnOutage} carrying {@code
     *     @Retryable}), at any depth
     */
    static boolean metaAnnotated(CanBeAnnotated element, Set<String> annotations) {
        for (String a : annotations) {
            if (element.isAnnotatedWith(a) || element.isMetaAnnotatedWith(a)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether {@link IdempotencyExempt} with a non-blank reason exempts {@code unit} from {@code
     * rule}: on the unit, on the method a lambda was written in, or on the class or a class it is
     * nested in.
     */
    static boolean exempt(JavaCodeUnit unit, String rule) {
        if (exempts(unit, rule)) {
            return true;
        }
        String enclosing = lambdaEnclosingMethod(unit);
        if (enclosing != null) {
            for (JavaCodeUnit u : unit.getOwner().getCodeUnits()) {
                if (u.getName().equals(enclosing) && exempts(u, rule)) {
                    return true;
                }
            }
        }
        return exempt(unit.getOwner(), rule);
    }

    static boolean exempt(JavaClass type, String rule) {
        for (Optional<JavaClass> c = Optional.of(type);
                c.isPresent();
                c = c.get().getEnclosingClass()) {
            if (exempts(c.get(), rule)) {
                return true;
            }
        }
        return false;
    }

    private static boolean exempts(CanBeAnnotated element, String rule) {
        if (!element.isAnnotatedWith(IdempotencyExempt.class.getName())) {
            return false;
        }
        JavaAnnotation<?> a = annotation(element);
        Object rules = a.get("rules").orElse(new Object[0]);
        Object reason = a.get("reason").orElse("");
        if (String.valueOf(reason).isBlank()) {
            return false;
        }
        Object[] list = rules instanceof Object[] array ? array : new Object[] {rules};
        for (Object r : list) {
            if (rule.equals(String.valueOf(r))) {
                return true;
            }
        }
        return false;
    }

    private static JavaAnnotation<?> annotation(CanBeAnnotated element) {
        if (element instanceof JavaCodeUnit u) {
            return u.getAnnotationOfType(IdempotencyExempt.class.getName());
        }
        return ((JavaClass) element).getAnnotationOfType(IdempotencyExempt.class.getName());
    }

    /** @return {@code m} for a lambda body {@code lambda$m$0}, else null */
    static String lambdaEnclosingMethod(JavaCodeUnit unit) {
        String name = unit.getName();
        if (!name.startsWith("lambda$")) {
            return null;
        }
        int end = name.indexOf('$', "lambda$".length());
        return end > "lambda$".length() ? name.substring("lambda$".length(), end) : null;
    }

    /** @return the lambda bodies written in {@code unit} */
    static List<JavaCodeUnit> lambdasOf(JavaCodeUnit unit) {
        List<JavaCodeUnit> out = new ArrayList<>();
        for (JavaCodeUnit u : unit.getOwner().getCodeUnits()) {
            if (unit.getName().equals(lambdaEnclosingMethod(u))) {
                out.add(u);
            }
        }
        return out;
    }

    /**
     * @return the first of {@code calls} that comes after the start of a try block of {@code unit}
     *     that catches a type matching {@code caught}, without being inside that try block: the wait
     *     of a retry loop, in the handler or after it
     */
    static Optional<JavaCall<?>> afterCatching(
            JavaCodeUnit unit, List<JavaCall<?>> calls, Predicate<JavaClass> caught) {
        List<TryCatchBlock> blocks = new ArrayList<>(unit.getTryCatchBlocks());
        // in line order, so that the same call is named on every run
        blocks.sort(Comparator.comparingInt(b -> b.getSourceCodeLocation().getLineNumber()));
        for (TryCatchBlock block : blocks) {
            // handlers in lambdas belong to other code; Throwable is what try-with-resources catches to close
            if (block.isDeclaredInLambda()
                    || block.getCaughtThrowables().stream()
                            .noneMatch(t -> caught.test(t) && !t.getName().equals(Throwable.class.getName()))) {
                continue;
            }
            int start = block.getSourceCodeLocation().getLineNumber();
            for (JavaCall<?> call : calls) {
                if (call.getLineNumber() >= start
                        && !block.getAccessesContainedInTryBlock().contains(call)) {
                    return Optional.of(call);
                }
            }
        }
        return Optional.empty();
    }

    /** @return whether a try block of {@code unit} catches a type matching {@code caught} */
    static boolean catches(JavaCodeUnit unit, Predicate<JavaClass> caught) {
        return unit.getTryCatchBlocks().stream()
                .flatMap(b -> b.getCaughtThrowables().stream())
                .anyMatch(caught);
    }

    /** @return {@code Type.member (Type.java:12)} for a message: a call, a method reference or a field read */
    static String where(JavaAccess<?> access) {
        return access.getTarget().getOwner().getSimpleName() + "."
                + access.getTarget().getName() + " " + access.getSourceCodeLocation();
    }

    /** @return {@code Type.method} of a unit */
    static String name(JavaCodeUnit unit) {
        return unit.getOwner().getName() + "." + unit.getName();
    }
}
