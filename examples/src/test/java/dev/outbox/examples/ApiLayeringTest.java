package dev.outbox.examples;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.core.Outbox;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.relay.Relay;
import dev.outbox.schemas.AvroCodec;
import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The layering rule of the public API: no public or protected member of a public class outside an
 * {@code internal} package mentions an {@code internal} type, so users can never come to depend on
 * one. Checked over every library module's classes.
 */
class ApiLayeringTest {

    private static final List<Class<?>> MODULE_MARKERS = List.of(
            OutboxMigrations.class,
            AvroCodec.class,
            Outbox.class,
            Relay.class,
            IdempotentConsumer.class,
            IdempotencyStore.class);

    @Test
    void publicApiNeverExposesInternalTypes() throws Exception {
        List<String> violations = new ArrayList<>();
        int checked = 0;
        for (Class<?> marker : MODULE_MARKERS) {
            for (String name : classNames(marker)) {
                if (name.contains(".internal.") || name.startsWith("dev.outbox.migrations.jooq.")) {
                    continue;
                }
                Class<?> c = Class.forName(name, false, getClass().getClassLoader());
                if (!Modifier.isPublic(c.getModifiers())) {
                    continue;
                }
                checked++;
                for (Method m : c.getDeclaredMethods()) {
                    if (exposed(m.getModifiers()) && !m.isSynthetic()) {
                        check(violations, c, m.toGenericString());
                    }
                }
                for (Constructor<?> k : c.getDeclaredConstructors()) {
                    if (exposed(k.getModifiers())) {
                        check(violations, c, k.toGenericString());
                    }
                }
                for (Field f : c.getDeclaredFields()) {
                    if (exposed(f.getModifiers())) {
                        check(violations, c, f.toGenericString());
                    }
                }
                if (c.getSuperclass() != null) {
                    check(violations, c, "extends " + c.getGenericSuperclass().getTypeName());
                }
            }
        }
        assertThat(checked).as("public API classes found").isGreaterThan(30);
        assertThat(violations)
                .as("public API members that mention internal types")
                .isEmpty();
    }

    private static boolean exposed(int modifiers) {
        return Modifier.isPublic(modifiers) || Modifier.isProtected(modifiers);
    }

    private static void check(List<String> violations, Class<?> owner, String signature) {
        // the owner's own name may contain ".internal." only when it is internal, which was skipped
        if (signature.matches(".*\\bdev\\.outbox\\.[a-z.]*\\.internal\\..*")) {
            violations.add(owner.getName() + ": " + signature);
        }
    }

    private static List<String> classNames(Class<?> marker) throws IOException, URISyntaxException {
        Path location = Path.of(
                marker.getProtectionDomain().getCodeSource().getLocation().toURI());
        List<String> names = new ArrayList<>();
        if (Files.isDirectory(location)) {
            try (Stream<Path> files = Files.walk(location)) {
                files.filter(p -> p.toString().endsWith(".class"))
                        .map(p -> location.relativize(p).toString())
                        .forEach(n -> names.add(n));
            }
        } else {
            try (JarFile jar = new JarFile(location.toFile())) {
                Collections.list(jar.entries()).stream()
                        .map(e -> e.getName())
                        .filter(n -> n.endsWith(".class"))
                        .forEach(names::add);
            }
        }
        return names.stream()
                .filter(n -> n.startsWith("dev/outbox/")
                        && !n.endsWith("package-info.class")
                        && !n.endsWith("module-info.class"))
                .map(n -> n.substring(0, n.length() - ".class".length()).replace('/', '.'))
                .toList();
    }
}
