package dev.outbox.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Finds fully qualified type names in Java code where an import would do: {@code new
 * java.util.HashSet<>()} instead of importing {@code java.util.HashSet}. Comments, string and character
 * literals, text blocks and the {@code package} and {@code import} lines are not code and are not
 * looked at. A qualified name is accepted when its simple name is taken in that file by something else:
 * an imported type of another package, a type declared in the file or in its package, a type of
 * {@code java.lang}, or another qualified type of that simple name in the same file.
 */
final class FullyQualifiedNames {

    /** A qualified type name: lower-case package segments from a known root, then the type's name. */
    private static final Pattern QUALIFIED = Pattern.compile(
            "(?<![\\w.$])((?:java|javax|jakarta|org|com|io|dev|net|sun|jdk|ch)(?:\\.[a-z][a-z0-9_]*)*)\\.([A-Z]\\w*)");

    private static final Pattern IMPORT =
            Pattern.compile("^\\s*import\\s+(static\\s+)?([\\w.]+)\\s*;", Pattern.MULTILINE);
    private static final Pattern PACKAGE = Pattern.compile("^\\s*package\\s+([\\w.]+)\\s*;", Pattern.MULTILINE);
    private static final Pattern DECLARED =
            Pattern.compile("\\b(?:class|interface|enum|record)\\s+([A-Z]\\w*)|@interface\\s+([A-Z]\\w*)");

    private FullyQualifiedNames() {}

    /**
     * @param root the project's root directory
     * @return one line per qualified name found in the {@code src/main/java} and {@code src/test/java}
     *     trees of every module below {@code root}: {@code path:line: name}, and what to import
     */
    static List<String> findInTree(Path root) {
        List<String> found = new ArrayList<>();
        for (Path p : JavaSources.files(root)) {
            for (String hit : findIn(JavaSources.read(p), samePackageTypes(p))) {
                found.add(root.relativize(p) + ":" + hit);
            }
        }
        return found;
    }

    /**
     * @param source the text of one Java file
     * @param samePackageTypes simple names of the other types of the file's package
     * @return {@code line: name ...} for each qualified name that an import would replace
     */
    static List<String> findIn(String source, Set<String> samePackageTypes) {
        String code = JavaSources.code(source);
        Matcher pkg = PACKAGE.matcher(code);
        String ownPackage = pkg.find() ? pkg.group(1) : "";
        Map<String, String> owners = new HashMap<>(); // simple name -> the package it is taken from
        samePackageTypes.forEach(t -> owners.put(t, ownPackage));
        Matcher declared = DECLARED.matcher(code);
        while (declared.find()) {
            owners.put(declared.group(1) != null ? declared.group(1) : declared.group(2), ownPackage);
        }
        Matcher imports = IMPORT.matcher(code);
        while (imports.find()) {
            if (imports.group(1) == null) {
                String name = imports.group(2);
                int dot = name.lastIndexOf('.');
                owners.put(name.substring(dot + 1), name.substring(0, dot));
            }
        }
        code = blank(blank(code, PACKAGE), IMPORT);
        Map<String, Set<String>> qualifiedPackages = new HashMap<>(); // simple name -> packages written out
        Matcher all = QUALIFIED.matcher(code);
        while (all.find()) {
            qualifiedPackages
                    .computeIfAbsent(all.group(2), k -> new HashSet<>())
                    .add(all.group(1));
        }
        List<String> found = new ArrayList<>();
        Matcher m = QUALIFIED.matcher(code);
        while (m.find()) {
            String packageName = m.group(1);
            String simpleName = m.group(2);
            if (qualifiedPackages.get(simpleName).size() > 1) {
                continue; // two types of that name, both written out: at most one could be imported
            }
            String owner = owners.get(simpleName);
            boolean clash = (owner != null && !owner.equals(packageName))
                    || (owner == null && !packageName.equals("java.lang") && isJavaLang(simpleName));
            if (!clash) {
                int line = JavaSources.lineOf(code, m.start());
                found.add(line + ": " + packageName + "." + simpleName + " (import " + packageName + "." + simpleName
                        + " and write " + simpleName + ")");
            }
        }
        return found;
    }

    /** {@code text} with every match of {@code p} replaced by spaces, line breaks kept. */
    private static String blank(String text, Pattern p) {
        return p.matcher(text).replaceAll(m -> m.group().replaceAll("[^\n]", " "));
    }

    private static Set<String> samePackageTypes(Path file) {
        Set<String> names = new HashSet<>();
        try (Stream<Path> siblings = Files.list(file.getParent())) {
            siblings.map(p -> p.getFileName().toString())
                    .filter(n ->
                            n.endsWith(".java") && !n.equals(file.getFileName().toString()))
                    .forEach(n -> names.add(n.substring(0, n.length() - ".java".length())));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return names;
    }

    private static boolean isJavaLang(String simpleName) {
        try {
            Class.forName("java.lang." + simpleName, false, ClassLoader.getPlatformClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }
}
