package dev.fvdisk.monitoring;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * The series selectors of a PromQL expression, as a Grafana dashboard writes them: the metric names
 * it reads and the label names each selector matches on. Only as much of PromQL as finding them
 * needs: strings, label matchers, ranges and subqueries are skipped; an identifier followed by
 * {@code (} is a function or an aggregation; the parenthesised lists after {@code by}, {@code
 * without}, {@code on}, {@code ignoring}, {@code group_left} and {@code group_right} hold labels;
 * the operators spelt as words, {@code offset}, numbers and durations are not names; Grafana's
 * variables ({@code $image}, {@code ${image}}, {@code [[image]]}) are skipped. Grafana's template
 * query {@code label_values(metric, label)} reads its first argument as an expression and its last
 * as a label. A selector written as {@code {__name__="metric"}} names its metric that way.
 */
final class PromQl {

  /** One series selector: a metric name and the labels its matchers name. */
  record Selector(String metric, Set<String> labels) {}

  /** Aggregations, which may be followed by {@code by (...)} before their parenthesis. */
  private static final Set<String> AGGREGATIONS =
      Set.of(
          "sum",
          "min",
          "max",
          "avg",
          "group",
          "stddev",
          "stdvar",
          "count",
          "count_values",
          "bottomk",
          "topk",
          "quantile",
          "limitk",
          "limit_ratio");

  /** Keywords followed by a parenthesised list of label names. */
  private static final Set<String> LABEL_LISTS =
      Set.of("by", "without", "on", "ignoring", "group_left", "group_right");

  /** Other words that are never metric names. */
  private static final Set<String> WORDS =
      Set.of("and", "or", "unless", "atan2", "bool", "offset", "inf", "nan");

  private final String text;
  private int pos;
  private final List<Selector> selectors = new ArrayList<>();

  private PromQl(String text) {
    this.text = text;
  }

  /** The selectors of {@code expression}, in order. */
  static List<Selector> selectors(String expression) {
    PromQl parser = new PromQl(expression);
    parser.scan(expression.length());
    return parser.selectors;
  }

  /** The metric names {@code expression} reads, in order of first appearance. */
  static Set<String> metricNames(String expression) {
    Set<String> names = new LinkedHashSet<>();
    for (Selector s : selectors(expression)) {
      names.add(s.metric());
    }
    return names;
  }

  /** Reads up to {@code end}, an index into the text. */
  private void scan(int end) {
    while (pos < end) {
      char c = text.charAt(pos);
      if (c == '"' || c == '\'' || c == '`') {
        skipString();
      } else if (c == '#') {
        while (pos < end && text.charAt(pos) != '\n') {
          pos++;
        }
      } else if (c == '$') {
        skipVariable();
      } else if (c == '[') {
        // A range, a subquery's range and step, or Grafana's old [[variable]]: no names inside.
        pos = closing(pos, '[', ']') + 1;
      } else if (c == '{') {
        // A selector without a name before its matchers, such as {__name__="up"}.
        Set<String> labels = new LinkedHashSet<>();
        String name = matchers(labels);
        if (name != null) {
          labels.remove("__name__");
          selectors.add(new Selector(name, labels));
        }
      } else if (Character.isDigit(c) || (c == '.' && pos + 1 < end && isDigit(pos + 1))) {
        // Numbers, hexadecimal and exponent forms, and durations like 5m or 1h30m.
        while (pos < end && (Character.isLetterOrDigit(text.charAt(pos)) || isNumberPunct(pos))) {
          pos++;
        }
      } else if (isIdentifierStart(c)) {
        identifier();
      } else {
        pos++;
      }
    }
  }

  private void identifier() {
    int start = pos;
    while (pos < text.length() && isIdentifierPart(text.charAt(pos))) {
      pos++;
    }
    String word = text.substring(start, pos);
    int next = skipSpace(pos);
    boolean call = next < text.length() && text.charAt(next) == '(';
    String lower = word.toLowerCase(Locale.ROOT);
    if (LABEL_LISTS.contains(lower)) {
      if (call) {
        pos = closing(next, '(', ')') + 1;
      }
    } else if (call && word.equals("label_values")) {
      labelValues(next);
    } else if (call && (word.equals("metrics") || word.equals("label_names"))) {
      // Grafana's metrics(regex) and label_names(): no expression inside.
      pos = closing(next, '(', ')') + 1;
    } else if (call || AGGREGATIONS.contains(lower) || WORDS.contains(lower)) {
      // A function's arguments are scanned like the rest; only its name is dropped.
    } else {
      Set<String> labels = new LinkedHashSet<>();
      if (next < text.length() && text.charAt(next) == '{') {
        pos = next;
        matchers(labels);
      }
      selectors.add(new Selector(word, labels));
    }
  }

  /**
   * Grafana's {@code label_values(label)} and {@code label_values(expression, label)}: the
   * expression is scanned, the label is not a metric.
   */
  private void labelValues(int open) {
    int close = closing(open, '(', ')');
    int depth = 0;
    int lastComma = -1;
    for (int i = open + 1; i < close; i++) {
      char c = text.charAt(i);
      if (c == '"' || c == '\'' || c == '`') {
        i = afterString(i) - 1;
      } else if (c == '(' || c == '{' || c == '[') {
        depth++;
      } else if (c == ')' || c == '}' || c == ']') {
        depth--;
      } else if (c == ',' && depth == 0) {
        lastComma = i;
      }
    }
    if (lastComma >= 0) {
      pos = open + 1;
      scan(lastComma);
    }
    pos = close + 1;
  }

  /**
   * Reads a matcher list at {@code pos} (at its brace), adding the label names to {@code labels};
   * returns the metric a {@code __name__="..."} matcher names, if any.
   */
  private @Nullable String matchers(Set<String> labels) {
    int close = closing(pos, '{', '}');
    @Nullable String name = null;
    pos++;
    while (pos < close) {
      char c = text.charAt(pos);
      if (c == '"' || c == '\'' || c == '`') {
        // PromQL 3 quotes names that are not identifiers: {"metric.name", "label.name"="x"}.
        int from = pos + 1;
        skipString();
        String quoted = text.substring(from, pos - 1);
        int op = skipSpace(pos);
        if (op < close && "=!".indexOf(text.charAt(op)) >= 0) {
          labels.add(quoted);
          pos = skipSpace(skipOperator(op, close));
          if (pos < close && "\"'`".indexOf(text.charAt(pos)) >= 0) {
            skipString();
          }
        } else {
          name = quoted;
        }
      } else if (isIdentifierStart(c)) {
        int start = pos;
        while (pos < close && isIdentifierPart(text.charAt(pos))) {
          pos++;
        }
        String label = text.substring(start, pos);
        int op = skipSpace(pos);
        labels.add(label);
        int value = skipSpace(skipOperator(op, close));
        // The value is skipped as a string below, or read here when it names the metric.
        if (label.equals("__name__")
            && text.startsWith("=", op)
            && !text.startsWith("=~", op)
            && value < close) {
          pos = value;
          int from = pos + 1;
          skipString();
          name = text.substring(from, pos - 1);
        } else {
          pos = value;
          if (pos < close && "\"'`".indexOf(text.charAt(pos)) >= 0) {
            skipString();
          }
        }
      } else {
        pos++;
      }
    }
    pos = close + 1;
    return name;
  }

  private void skipString() {
    pos = afterString(pos);
  }

  /** The index just after the string literal that starts at {@code from}. */
  private int afterString(int from) {
    char quote = text.charAt(from);
    int i = from + 1;
    while (i < text.length() && text.charAt(i) != quote) {
      if (text.charAt(i) == '\\' && quote != '`') {
        i++;
      }
      i++;
    }
    return i + 1;
  }

  /** $name, ${name} or ${name:format}. */
  private void skipVariable() {
    pos++;
    if (pos < text.length() && text.charAt(pos) == '{') {
      pos = closing(pos, '{', '}') + 1;
    } else {
      while (pos < text.length() && isIdentifierPart(text.charAt(pos))) {
        pos++;
      }
    }
  }

  /** The index of the bracket closing the one at {@code open}, skipping strings and nesting. */
  private int closing(int open, char opening, char closingChar) {
    int saved = pos;
    int depth = 0;
    pos = open;
    try {
      while (pos < text.length()) {
        char c = text.charAt(pos);
        if (c == '"' || c == '\'' || c == '`') {
          skipString();
          continue;
        }
        if (c == opening) {
          depth++;
        } else if (c == closingChar && --depth == 0) {
          return pos;
        }
        pos++;
      }
      throw new IllegalArgumentException("unbalanced " + opening + " at " + open + " in: " + text);
    } finally {
      pos = saved;
    }
  }

  /** The index after a matcher's operator ({@code =}, {@code !=}, {@code =~}, {@code !~}). */
  private int skipOperator(int from, int close) {
    int i = from;
    while (i < close && "=!~".indexOf(text.charAt(i)) >= 0) {
      i++;
    }
    return i;
  }

  private int skipSpace(int from) {
    int i = from;
    while (i < text.length() && Character.isWhitespace(text.charAt(i))) {
      i++;
    }
    return i;
  }

  private boolean isDigit(int i) {
    return Character.isDigit(text.charAt(i));
  }

  /** A dot, or the sign of an exponent, inside a number. */
  private boolean isNumberPunct(int i) {
    char c = text.charAt(i);
    if (c == '.') {
      return true;
    }
    return (c == '+' || c == '-') && "eE".indexOf(text.charAt(i - 1)) >= 0;
  }

  private static boolean isIdentifierStart(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  }

  private static boolean isIdentifierPart(char c) {
    return isIdentifierStart(c) || (c >= '0' && c <= '9');
  }
}
