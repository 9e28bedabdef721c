package dev.outbox.spring.internal;

import java.util.List;
import org.springframework.boot.autoconfigure.condition.ConditionOutcome;
import org.springframework.boot.autoconfigure.condition.SpringBootCondition;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.context.annotation.ConditionContext;
import org.springframework.core.type.AnnotatedTypeMetadata;

/** Matches when {@code outbox.idempotency.paths} names at least one path (comma list or YAML list). */
public final class IdempotencyPathsCondition extends SpringBootCondition {
    @Override
    public ConditionOutcome getMatchOutcome(ConditionContext context, AnnotatedTypeMetadata metadata) {
        List<String> paths = Binder.get(context.getEnvironment())
                .bind("outbox.idempotency.paths", Bindable.listOf(String.class))
                .orElse(List.of());
        return paths.isEmpty()
                ? ConditionOutcome.noMatch("outbox.idempotency.paths is empty")
                : ConditionOutcome.match("outbox.idempotency.paths " + paths);
    }
}
