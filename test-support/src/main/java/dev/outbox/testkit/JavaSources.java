package dev.outbox.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;

/**
 * The project's Java sources, for tests that check a rule over the code of every module (imports
 * instead of qualified names, no use of {@code internal} packages outside the library). Reads the
 * files as text; what is left after {@link #code} is code only, at the same offsets and lines.
 */
public final class JavaSources {

    private JavaSources() {}

    /**
     * @return the project's root directory: the first directory, from the current one up, that holds the
     *     Maven wrapper and the test-support module (a module's tests run in the module's directory)
     * @throws IllegalStateException when there is none, naming where it looked
     */
    public static Path projectRoot() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isRegularFile(dir.resolve("mvnw")) && Files.isDirectory(dir.resolve("test-support"))) {
                return dir;
            }
        }
        throw new IllegalStateException("no project root (a directory with mvnw and test-support) above "
                + Path.of("").toAbsolutePath() + "; run the test from the project's tree");
    }

    /**
     * @param root the project's root directory
     * @param modules the modules to list, or none for every module
     * @return the {@code .java} files of {@code src/main/java} and {@code src/test/java} of those modules,
     *     sorted; {@code target} and hidden directories are not entered
     */
    public static List<Path> files(Path root, String... modules) {
        List<String> only = List.of(modules);
        List<Path> found = new ArrayList<>();
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attributes) {
                    String name =
                            dir.getFileName() == null ? "" : dir.getFileName().toString();
                    boolean skip = !dir.equals(root) && (name.equals("target") || name.startsWith("."));
                    return skip ? FileVisitResult.SKIP_SUBTREE : FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) {
                    String relative = root.relativize(file).toString().replace('\\', '/');
                    String module = relative.substring(0, Math.max(0, relative.indexOf('/')));
                    if (relative.endsWith(".java")
                            && (relative.contains("/src/main/java/") || relative.contains("/src/test/java/"))
                            && (only.isEmpty() || only.contains(module))) {
                        found.add(file);
                    }
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        found.sort(null);
        return found;
    }

    /**
     * @param file a source file
     * @return its text
     */
    public static String read(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * @param source the text of a Java file
     * @return the text with comments, string and character literals and text blocks replaced by spaces,
     *     line breaks kept, so what is left is code and every offset and line is the source's
     */
    public static String code(String source) {
        StringBuilder out = new StringBuilder(source.length());
        int i = 0;
        int n = source.length();
        while (i < n) {
            char c = source.charAt(i);
            int end;
            if (source.startsWith("//", i)) {
                end = source.indexOf('\n', i);
                end = end < 0 ? n : end;
            } else if (source.startsWith("/*", i)) {
                end = source.indexOf("*/", i + 2);
                end = end < 0 ? n : end + 2;
            } else if (source.startsWith("\"\"\"", i)) {
                end = source.indexOf("\"\"\"", i + 3);
                while (end > 0 && source.charAt(end - 1) == '\\') {
                    end = source.indexOf("\"\"\"", end + 1);
                }
                end = end < 0 ? n : end + 3;
            } else if (c == '"' || c == '\'') {
                end = i + 1;
                while (end < n && source.charAt(end) != c && source.charAt(end) != '\n') {
                    end += source.charAt(end) == '\\' ? 2 : 1;
                }
                end = Math.min(n, end + 1);
            } else {
                out.append(c);
                i++;
                continue;
            }
            for (int k = i; k < end; k++) {
                out.append(source.charAt(k) == '\n' ? '\n' : ' ');
            }
            i = end;
        }
        return out.toString();
    }

    /**
     * @param text a file's text
     * @param offset an offset in it
     * @return the line of that offset, from 1
     */
    public static int lineOf(String text, int offset) {
        int line = 1;
        for (int k = 0; k < offset; k++) {
            if (text.charAt(k) == '\n') {
                line++;
            }
        }
        return line;
    }
}
