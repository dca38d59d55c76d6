// The adapt report as one self-contained HTML page (see report.h): inline CSS and SVG only, no
// scripts and no addresses to fetch, so it opens the same offline, in a mail attachment or in CI
// artefacts. Every string that came from the report is escaped: node names and instructions carry
// <, > and &.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string_view>

#include "report/report.h"

namespace gos::report {

namespace {

// ---------------------------------------------------------------------------------------------
// Text and numbers.

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Keeps whole UTF-8 characters, so a long node name cut for a plot label stays valid text.
std::string shorten(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end) + "…";
}

constexpr const char* kNotAvailable = "n/a";

// About `digits` significant digits without exponents: 4.12, 0.0345, 123.
std::string significant(double value, int digits = 3) {
  if (!std::isfinite(value)) return kNotAvailable;
  if (value == 0) return "0";
  int decimals = digits - 1 - static_cast<int>(std::floor(std::log10(std::abs(value))));
  return fmt::format("{:.{}f}", value, std::clamp(decimals, 0, 6));
}

// Latencies span 0.004 ms operators to 400 ms models; decimals by magnitude keep columns comparable.
std::string milliseconds(double value) {
  if (!std::isfinite(value)) return kNotAvailable;
  double magnitude = std::abs(value);
  int decimals = magnitude == 0 ? 0 : magnitude < 0.01 ? 4 : magnitude < 1 ? 3 : magnitude < 100 ? 2 : 1;
  return fmt::format("{:.{}f}", value, decimals);
}

std::string fixed(double value, int decimals) {
  if (!std::isfinite(value)) return kNotAvailable;
  return fmt::format("{:.{}f}", value, decimals);
}

// How a user typed it: 2.5, 0.5, 3.
std::string plain(double value) {
  if (!std::isfinite(value)) return kNotAvailable;
  return fmt::format("{:.6g}", value);
}

// 40.8 M, 272 k: MACs and parameter counts are read by magnitude.
std::string count(int64_t value) {
  double magnitude = std::abs(static_cast<double>(value));
  if (magnitude < 1e3) return fmt::format("{}", value);
  if (magnitude < 1e6) return significant(static_cast<double>(value) / 1e3) + " k";
  if (magnitude < 1e9) return significant(static_cast<double>(value) / 1e6) + " M";
  return significant(static_cast<double>(value) / 1e9) + " G";
}

std::string count_cell(int64_t value) {
  return fmt::format("<td class=\"num\" title=\"{}\">{}</td>", value, count(value));
}

std::string relative_change(double before, double after) {
  if (before == 0 || !std::isfinite(before) || !std::isfinite(after)) return "";
  double change = (after - before) / before * 100;
  return fmt::format("{}{:.0f}%", change > 0 ? "+" : "", change);
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return kNotAvailable;
  if (seconds < 60) return significant(seconds, 2) + " s";
  auto whole = static_cast<int64_t>(std::llround(seconds));
  if (whole < 3600) return fmt::format("{} min {:02} s", whole / 60, whole % 60);
  return fmt::format("{} h {:02} min", whole / 3600, whole % 3600 / 60);
}

// ---------------------------------------------------------------------------------------------
// What the report's figures mean in words.

bool is_regression(const AdaptReport& report) { return report.metric == "mae"; }

std::string quality_name(const AdaptReport& report) { return is_regression(report) ? "MAE" : "Test accuracy"; }

std::string loss_unit(const AdaptReport& report) { return is_regression(report) ? "MAE increase" : "accuracy points"; }

std::string quality_of(const ModelSummary& model, const AdaptReport& report) {
  if (is_regression(report)) return model.mae ? significant(*model.mae, 4) : kNotAvailable;
  return model.accuracy ? fixed(*model.accuracy, 2) + "%" : kNotAvailable;
}

// A loss in the report's unit: accuracy points as in the summary, MAE with its own precision.
std::string loss_value(double loss, const AdaptReport& report) {
  return is_regression(report) ? significant(loss, 3) : fixed(loss, 2);
}

std::string quality_change(double drop, const AdaptReport& report) {
  if (!std::isfinite(drop)) return kNotAvailable;
  if (is_regression(report)) {
    if (drop == 0) return "unchanged";
    return fmt::format("MAE {} {}", drop > 0 ? "up" : "down", significant(std::abs(drop), 3));
  }
  std::string points = fixed(std::abs(drop), 2);
  if (points == "0.00") return "unchanged";
  return fmt::format("{} points {}", points, drop > 0 ? "lost" : "gained");
}

std::string speedup_words(double speedup) {
  if (!std::isfinite(speedup) || speedup <= 0) return kNotAvailable;
  // Decided on the printed value, so 0.999 reads "1.00x faster" rather than "1.00x (slower)".
  bool faster = std::round(speedup * 100) >= 100;
  return fixed(speedup, 2) + (faster ? "x faster" : "x (slower)");
}

// The tightest latency the user asked for, as a model latency in ms; none when no speed target was given.
std::optional<double> target_latency_ms(const AdaptReport& report) {
  std::optional<double> target = report.target_latency_ms;
  if (report.target_speedup && *report.target_speedup > 0) {
    double from_speedup = report.original.median_ms / *report.target_speedup;
    if (!target || from_speedup < *target) target = from_speedup;
  }
  if (target && !(std::isfinite(*target) && *target > 0)) return std::nullopt;
  return target;
}

std::string constraint_words(const AdaptReport& report) {
  std::vector<std::string> parts;
  if (report.target_speedup) parts.push_back(fmt::format("at least {}x faster", plain(*report.target_speedup)));
  if (report.target_latency_ms) parts.push_back(fmt::format("at most {} ms median latency", plain(*report.target_latency_ms)));
  if (is_regression(report)) {
    parts.push_back(fmt::format("MAE up by at most {}", plain(report.max_quality_drop)));
  } else {
    parts.push_back(fmt::format("at most {} accuracy points lost", plain(report.max_quality_drop)));
  }
  if (parts.size() == 1) parts.insert(parts.begin(), "as fast as possible");
  return fmt::format("{}", fmt::join(parts, ", "));
}

// The search normally writes the verdict; a report assembled by hand still gets one.
std::string verdict_text(const AdaptReport& report) {
  if (!report.verdict.empty()) return report.verdict;
  return fmt::format("The adapted model is {} with {}; the constraint was {}.", speedup_words(report.speedup),
                     quality_change(report.quality_drop, report), report.constraint_met ? "met" : "not met");
}

std::string backend_words(const std::string& backend) {
  if (backend == "torch") return "eager libtorch";
  if (backend == "mobile") return "TorchScript optimised for mobile (XNNPACK), as PyTorch Mobile runs it";
  if (backend == "ort") return "ONNX Runtime (CPU)";
  return "";
}

int changed_layer_count(const AdaptReport& report) {
  return static_cast<int>(std::count_if(report.layers.begin(), report.layers.end(), [](const LayerChoice& l) { return !l.kept; }));
}

// ---------------------------------------------------------------------------------------------
// Plot geometry shared by both charts.

// A value range padded to round tick steps (1, 2 or 5 times a power of ten); never empty, so
// mapping a value onto it never divides by zero.
struct Axis {
  double lo = 0, hi = 1, step = 0.2;
  int decimals = 1;

  std::vector<double> ticks() const {
    std::vector<double> out;
    auto intervals = static_cast<int>(std::llround((hi - lo) / step));
    for (int i = 0; i <= intervals; ++i) {
      double tick = lo + i * step;
      out.push_back(std::abs(tick) < step * 1e-9 ? 0.0 : tick);  // no "-0" label
    }
    return out;
  }
  std::string label(double value) const { return fmt::format("{:.{}f}", value, decimals); }
  // Clamped so that even an absurd value (an axis that fell back to 0..1) gives a finite coordinate.
  double fraction(double value) const { return std::clamp((value - lo) / (hi - lo), -1.0, 2.0); }
};

double nice_step(double raw) {
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  double fraction = raw / power;
  double nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

Axis nice_axis(double lo, double hi, int wanted_intervals = 5) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || !std::isfinite(hi - lo)) lo = 0, hi = 1;
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(1.0, std::abs(hi))) {
    double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo = lo == 0 ? 0 : lo - pad;
    hi += pad;
  }
  Axis axis;
  axis.step = nice_step((hi - lo) / wanted_intervals);
  axis.lo = std::floor(lo / axis.step) * axis.step;
  axis.hi = std::ceil(hi / axis.step) * axis.step;
  axis.decimals = std::clamp(-static_cast<int>(std::floor(std::log10(axis.step))), 0, 6);
  return axis;
}

// The plotting area inside an SVG, in pixels.
struct Frame {
  double left, top, width, height;
  double x(const Axis& axis, double value) const { return left + axis.fraction(value) * width; }
  double y(const Axis& axis, double value) const { return top + height - axis.fraction(value) * height; }
  double right() const { return left + width; }
  double bottom() const { return top + height; }
};

// The range of the finite values among `values`, always including zero: latencies and losses are
// read against zero.
std::pair<double, double> range_with_zero(const std::vector<double>& values) {
  double lo = 0, hi = 0;
  for (double value : values) {
    if (!std::isfinite(value)) continue;
    lo = std::min(lo, value);
    hi = std::max(hi, value);
  }
  return {lo, hi};
}

void x_axis(std::string& svg, const Axis& axis, const Frame& frame, const std::string& title) {
  auto out = std::back_inserter(svg);
  for (double tick : axis.ticks()) {
    double x = frame.x(axis, tick);
    fmt::format_to(out, "<line class=\"grid\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>", x, frame.top, frame.bottom());
    fmt::format_to(out, "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>", x, frame.bottom() + 16, axis.label(tick));
  }
  fmt::format_to(out, "<line class=\"axis\" x1=\"{0:.1f}\" y1=\"{2:.1f}\" x2=\"{1:.1f}\" y2=\"{2:.1f}\"/>", frame.left, frame.right(), frame.bottom());
  fmt::format_to(out, "<text class=\"axis-title\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>",
                 frame.left + frame.width / 2, frame.bottom() + 36, escape(title));
}

void y_axis(std::string& svg, const Axis& axis, const Frame& frame, const std::string& title) {
  auto out = std::back_inserter(svg);
  for (double tick : axis.ticks()) {
    double y = frame.y(axis, tick);
    fmt::format_to(out, "<line class=\"grid\" x1=\"{0:.1f}\" y1=\"{2:.1f}\" x2=\"{1:.1f}\" y2=\"{2:.1f}\"/>", frame.left, frame.right(), y);
    fmt::format_to(out, "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>", frame.left - 6, y + 4, axis.label(tick));
  }
  fmt::format_to(out, "<line class=\"axis\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>", frame.left, frame.top, frame.bottom());
  double middle = frame.top + frame.height / 2;
  fmt::format_to(out, "<text class=\"axis-title\" x=\"16\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0:.1f})\">{1}</text>",
                 middle, escape(title));
}

std::string svg_open(double width, double height, const std::string& label) {
  // No xmlns attribute: inline SVG in HTML does not need one, and the page carries no addresses.
  return fmt::format("<svg viewBox=\"0 0 {:.0f} {:.0f}\" role=\"img\" aria-label=\"{}\">", width, height, escape(label));
}

// ---------------------------------------------------------------------------------------------
// The Pareto front plot.

bool is_plottable(const FrontPoint& point) {
  return std::isfinite(point.predicted_latency_ms) && std::isfinite(point.predicted_loss);
}

std::string front_point_title(const FrontPoint& point, const AdaptReport& report) {
  const std::string measured = point.measured_speedup ? " (timed whole: " + speedup_words(*point.measured_speedup) + ")" : "";
  return fmt::format("{}predicted {} ms{}, predicted loss {} {}, {} layer{} changed", point.chosen ? "chosen: " : "",
                     milliseconds(point.predicted_latency_ms), measured, loss_value(point.predicted_loss, report),
                     loss_unit(report), point.changed_layers, point.changed_layers == 1 ? "" : "s");
}

void front_line(std::string& svg, std::vector<FrontPoint> points, const Axis& x, const Axis& y, const Frame& frame) {
  // Joining the points in latency order shows the trade-off curve.
  std::sort(points.begin(), points.end(),
            [](const FrontPoint& a, const FrontPoint& b) { return a.predicted_latency_ms < b.predicted_latency_ms; });
  if (points.size() < 2) return;
  svg += "<polyline class=\"front\" points=\"";
  for (const FrontPoint& point : points) {
    fmt::format_to(std::back_inserter(svg), "{:.1f},{:.1f} ", frame.x(x, point.predicted_latency_ms), frame.y(y, point.predicted_loss));
  }
  svg += "\"/>";
}

void front_markers(std::string& svg, const std::vector<FrontPoint>& points, const Axis& x, const Axis& y,
                   const Frame& frame, const AdaptReport& report) {
  auto out = std::back_inserter(svg);
  for (const FrontPoint& point : points) {
    if (point.chosen) continue;  // drawn last, on top
    fmt::format_to(out, "<circle class=\"{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4.5\"><title>{}</title></circle>",
                   point.measured_speedup ? "point timed" : "point", frame.x(x, point.predicted_latency_ms), frame.y(y, point.predicted_loss), escape(front_point_title(point, report)));
  }
  for (const FrontPoint& point : points) {
    if (!point.chosen) continue;
    double cx = frame.x(x, point.predicted_latency_ms), cy = frame.y(y, point.predicted_loss);
    fmt::format_to(out, "<circle class=\"chosen\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"7.5\"><title>{}</title></circle>", cx, cy,
                   escape(front_point_title(point, report)));
    bool label_left = cx > frame.left + frame.width * 0.8;
    fmt::format_to(out, "<text class=\"chosen-label\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\">chosen</text>",
                   label_left ? cx - 11 : cx + 11, cy - 8, label_left ? "end" : "start");
  }
}

void target_line(std::string& svg, double target_ms, const Axis& x, const Frame& frame) {
  double tx = frame.x(x, target_ms);
  auto out = std::back_inserter(svg);
  fmt::format_to(out, "<line class=\"target\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke-dasharray=\"6 4\"/>",
                 tx, frame.top, frame.bottom());
  bool label_left = tx > frame.left + frame.width * 0.7;
  fmt::format_to(out, "<text class=\"target-label\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\">target {} ms</text>",
                 label_left ? tx - 5 : tx + 5, frame.top + 12, label_left ? "end" : "start", milliseconds(target_ms));
}

std::string front_plot(const AdaptReport& report) {
  std::vector<FrontPoint> points;
  std::copy_if(report.front.begin(), report.front.end(), std::back_inserter(points), is_plottable);
  if (points.empty()) return "<p class=\"muted\">The search recorded no Pareto front to plot.</p>\n";

  std::optional<double> target = target_latency_ms(report);
  std::vector<double> latencies, losses;
  for (const FrontPoint& point : points) latencies.push_back(point.predicted_latency_ms), losses.push_back(point.predicted_loss);
  if (target) latencies.push_back(*target);
  auto [x_lo, x_hi] = range_with_zero(latencies);
  auto [y_lo, y_hi] = range_with_zero(losses);
  // A little headroom, so the extreme points and their labels are not drawn on the frame.
  Axis x = nice_axis(x_lo, x_hi + (x_hi - x_lo) * 0.05), y = nice_axis(y_lo, y_hi + (y_hi - y_lo) * 0.08);

  const double width = 720, height = 380;
  Frame frame{.left = 70, .top = 16, .width = width - 70 - 24, .height = height - 16 - 56};
  std::string svg = svg_open(width, height, "Pareto front of the search: predicted latency against predicted loss");
  x_axis(svg, x, frame, "predicted model latency (ms)");
  y_axis(svg, y, frame, fmt::format("predicted loss ({})", loss_unit(report)));
  if (target) target_line(svg, *target, x, frame);
  front_line(svg, points, x, y, frame);
  front_markers(svg, points, x, y, frame, report);
  svg += "</svg>\n";
  return svg;
}

// ---------------------------------------------------------------------------------------------
// Per-layer latency bars.

void bar(std::string& svg, const char* css_class, double value, const Axis& axis, const Frame& frame, double y, double thickness,
         const std::string& title) {
  double length = std::isfinite(value) ? std::max(0.0, frame.x(axis, value) - frame.left) : 0;
  auto out = std::back_inserter(svg);
  fmt::format_to(out, "<rect class=\"{}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"><title>{}</title></rect>",
                 css_class, frame.left, y, length, thickness, escape(title));
  fmt::format_to(out, "<text class=\"value\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>", frame.left + length + 4, y + thickness - 2,
                 milliseconds(value));
}

void bar_legend(std::string& svg, const Frame& frame) {
  auto out = std::back_inserter(svg);
  fmt::format_to(out, "<rect class=\"before\" x=\"{:.1f}\" y=\"4\" width=\"12\" height=\"10\"/>", frame.left);
  fmt::format_to(out, "<text x=\"{:.1f}\" y=\"13\">original</text>", frame.left + 16);
  fmt::format_to(out, "<rect class=\"after\" x=\"{:.1f}\" y=\"4\" width=\"12\" height=\"10\"/>", frame.left + 90);
  fmt::format_to(out, "<text x=\"{:.1f}\" y=\"13\">adapted</text>", frame.left + 106);
}

std::string layer_bars(const AdaptReport& report) {
  if (report.layers.empty()) return "<p class=\"muted\">No layers were searched.</p>\n";
  std::vector<double> values;
  for (const LayerChoice& layer : report.layers) values.push_back(layer.latency_ms_before), values.push_back(layer.latency_ms_after);
  Axis axis = nice_axis(0, range_with_zero(values).second);

  const double bar_thickness = 10, row = 2 * bar_thickness + 8, width = 720;
  Frame frame{.left = 215, .top = 24, .width = width - 215 - 60, .height = row * static_cast<double>(report.layers.size())};
  std::string svg = svg_open(width, frame.bottom() + 46, "Per-layer latency before and after adaptation");
  bar_legend(svg, frame);
  x_axis(svg, axis, frame, "operator latency alone (ms)");
  for (size_t i = 0; i < report.layers.size(); ++i) {
    const LayerChoice& layer = report.layers[i];
    double y = frame.top + static_cast<double>(i) * row + 4;
    fmt::format_to(std::back_inserter(svg), "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}<title>{}</title></text>",
                   frame.left - 8, y + bar_thickness + 3, escape(shorten(layer.node, 28)), escape(layer.node));
    bar(svg, "before", layer.latency_ms_before, axis, frame, y, bar_thickness,
        fmt::format("{} original: {} ms", layer.node, milliseconds(layer.latency_ms_before)));
    bar(svg, "after", layer.latency_ms_after, axis, frame, y + bar_thickness, bar_thickness,
        fmt::format("{} adapted ({}): {} ms", layer.node, layer.derivation, milliseconds(layer.latency_ms_after)));
  }
  fmt::format_to(std::back_inserter(svg), "<line class=\"axis\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>",
                 frame.left, frame.top, frame.bottom());
  svg += "</svg>\n";
  return svg;
}

// ---------------------------------------------------------------------------------------------
// Page sections, top to bottom.

constexpr const char* kStyle = R"css(
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2328;max-width:1080px;margin:2em auto;padding:0 1em}
h1{font-size:1.7em;margin:0 0 .1em}
h2{font-size:1.25em;margin:2em 0 .5em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
.subtitle,.muted{color:#57606a}
.subtitle{margin-top:0}
.verdict{font-size:1.3em;line-height:1.4;padding:.8em 1em;border-radius:6px;border-left:8px solid;margin:1.2em 0}
.verdict.met{background:#e8f5ec;border-color:#1a7f37}
.verdict.missed{background:#fff3e6;border-color:#bc4c00}
.badge{display:inline-block;font-size:.85em;font-weight:600;padding:.05em .6em;border-radius:1em;color:#fff}
.badge.met{background:#1a7f37}.badge.missed{background:#bc4c00}
table{border-collapse:collapse;margin:.5em 0;font-variant-numeric:tabular-nums}
th,td{padding:.3em .7em;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
.num{text-align:right}
td.num,td.nowrap{white-space:nowrap}
table.layers{font-size:.88em}
table.layers th,table.layers td{padding:.3em .5em}
tr.kept td{color:#6e7781}
tfoot td{font-weight:600;border-top:2px solid #d0d7de}
.scroll{overflow-x:auto}
.sub{font-size:.85em;color:#57606a}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.9em}
pre{background:#f6f8fa;padding:.6em .8em;border-radius:4px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
details{margin:.4em 0}summary{cursor:pointer}
.share{display:inline-block;height:.7em;background:#8fb3f0;vertical-align:middle}
svg{width:100%;height:auto;max-width:760px;display:block;margin:.5em 0}
svg text{font-size:12px;fill:#1f2328}
svg .axis-title{font-size:13px;font-weight:600}
svg .axis{stroke:#57606a;stroke-width:1}
svg .grid{stroke:#e5e7eb;stroke-width:1}
svg .front{fill:none;stroke:#8fb3f0;stroke-width:1.5}
svg .point{fill:#fff;stroke:#2f6fdf;stroke-width:1.5}
svg .point.timed{fill:#2f6fdf;fill-opacity:.85}
svg .chosen{fill:#e8590c;stroke:#7a2e00;stroke-width:1.5}
svg .chosen-label{fill:#b04000;font-weight:600}
svg .target{stroke:#c92a2a;stroke-width:1.5}
svg .target-label{fill:#c92a2a}
svg .before{fill:#a8b1bb}
svg .after{fill:#2f6fdf}
svg .value{font-size:9px;fill:#57606a}
)css";

void head(std::string& html, const AdaptReport& report) {
  fmt::format_to(std::back_inserter(html),
                 "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                 "<title>gos adapt: {}</title>\n<style>{}</style>\n</head>\n<body>\n",
                 escape(report.model), kStyle);
}

void title_and_verdict(std::string& html, const AdaptReport& report) {
  auto out = std::back_inserter(html);
  fmt::format_to(out, "<h1>Adapting {}</h1>\n", escape(report.model.empty() ? "a model" : report.model));
  fmt::format_to(out, "<p class=\"subtitle\">gos adapt report: {} of {} searched layer{} changed; target {}, backend {}, {} thread{}{}</p>\n",
                 changed_layer_count(report), report.layers.size(), report.layers.size() == 1 ? "" : "s", escape(report.target),
                 escape(report.backend), report.threads, report.threads == 1 ? "" : "s",
                 report.finished_at.empty() ? "" : "; finished " + escape(report.finished_at));
  const char* state = report.constraint_met ? "met" : "missed";
  fmt::format_to(out, "<p class=\"verdict {}\">{}</p>\n", state, escape(verdict_text(report)));
}

void summary_row(std::string& html, const std::string& name, const std::string& original, const std::string& adapted,
                 const std::string& change) {
  fmt::format_to(std::back_inserter(html), "<tr><th>{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
                 name, original, adapted, change);
}

std::string latency_cell(const ModelSummary& model) {
  if (model.runs == 0) return milliseconds(model.median_ms) + " ms";
  return fmt::format("{} ms<br><span class=\"sub\">p10–p90 {}–{} ms, {} runs</span>", milliseconds(model.median_ms),
                     milliseconds(model.p10_ms), milliseconds(model.p90_ms), model.runs);
}

void summary(std::string& html, const AdaptReport& report) {
  auto out = std::back_inserter(html);
  html += "<h2>Original and adapted model</h2>\n<table>\n<thead><tr><th></th><th class=\"num\">Original</th>"
          "<th class=\"num\">Adapted</th><th>Change</th></tr></thead>\n<tbody>\n";
  summary_row(html, quality_name(report), quality_of(report.original, report), quality_of(report.adapted, report),
              quality_change(report.quality_drop, report));
  summary_row(html, "Median latency", latency_cell(report.original), latency_cell(report.adapted), speedup_words(report.speedup));
  summary_row(html, "MACs", count(report.original.macs), count(report.adapted.macs),
              relative_change(static_cast<double>(report.original.macs), static_cast<double>(report.adapted.macs)));
  summary_row(html, "Parameters", count(report.original.params), count(report.adapted.params),
              relative_change(static_cast<double>(report.original.params), static_cast<double>(report.adapted.params)));
  html += "</tbody>\n</table>\n";
  if (!report.points.empty()) {
    // An int8 run: "Original" above is the original's int8 latency beside its fp32 quality.
    html += "<p>In int8 the latency above is the original's int8 form (post-training quantization) and the quality its fp32 "
            "one, from which the loss counts. All four models, timed side by side in one run:</p>\n<table>\n<thead><tr><th>Model</th>"
            "<th>Precision</th><th class=\"num\">" + quality_name(report) + "</th><th class=\"num\">Median latency</th></tr></thead>\n<tbody>\n";
    for (const auto& point : report.points) {
      fmt::format_to(out, "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n", escape(point.model),
                     escape(point.precision), quality_of(point.summary, report), latency_cell(point.summary));
    }
    html += "</tbody>\n</table>\n";
  }
  const char* state = report.constraint_met ? "met" : "missed";
  fmt::format_to(out, "<p>Constraint asked for: <strong>{}</strong>. <span class=\"badge {}\">{}</span></p>\n",
                 escape(constraint_words(report)), state, report.constraint_met ? "met" : "not met");
}

void front_section(std::string& html, const AdaptReport& report) {
  html += "<h2>Trade-offs the search found</h2>\n";
  html += "<p>Each point is one configuration of layer replacements that no other beats on both predicted latency "
          "and predicted loss (the Pareto front), as predicted before fine-tuning. The highlighted point is the one "
          "that was fine-tuned and exported; filled points were also timed whole (all their layers replaced, side by side "
          "with the original) before fine-tuning, to choose a point that really meets the latency target.";
  if (auto target = target_latency_ms(report)) {
    fmt::format_to(std::back_inserter(html), " The dashed line marks the target latency, {} ms.", milliseconds(*target));
  }
  html += "</p>\n<div class=\"scroll\">" + front_plot(report) + "</div>\n";
}

// The candidates that entered the search, and those the latency predictor left untimed.
std::string candidates_cell(const LayerChoice& layer) {
  std::string cell = std::to_string(layer.candidates);
  if (layer.predicted_slower > 0) cell += fmt::format(" ({} predicted slower, not timed)", layer.predicted_slower);
  if (layer.sensitivity_estimated > 0) cell += fmt::format(" ({} effects estimated, not measured)", layer.sensitivity_estimated);
  return cell;
}

void layer_row(std::string& html, const LayerChoice& layer, const AdaptReport& report) {
  fmt::format_to(std::back_inserter(html),
                 "<tr{}><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                 "{}{}<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                 layer.kept ? " class=\"kept\"" : "", escape(layer.node), escape(layer.op_type),
                 layer.kept ? "kept" : escape(layer.derivation), milliseconds(layer.latency_ms_before),
                 milliseconds(layer.latency_ms_after), count_cell(layer.macs_before), count_cell(layer.macs_after),
                 layer.kept ? "–" : significant(layer.fidelity * 100, 2) + "%", loss_value(layer.sensitivity, report),
                 candidates_cell(layer));
}

void layer_totals(std::string& html, const AdaptReport& report) {
  double ms_before = 0, ms_after = 0;
  int64_t macs_before = 0, macs_after = 0;
  for (const LayerChoice& layer : report.layers) {
    ms_before += layer.latency_ms_before, ms_after += layer.latency_ms_after;
    macs_before += layer.macs_before, macs_after += layer.macs_after;
  }
  fmt::format_to(std::back_inserter(html),
                 "<tfoot><tr><td colspan=\"3\">all searched layers</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                 "{}{}<td colspan=\"3\"></td></tr></tfoot>\n",
                 milliseconds(ms_before), milliseconds(ms_after), count_cell(macs_before), count_cell(macs_after));
}

void layer_table(std::string& html, const AdaptReport& report) {
  if (report.layers.empty()) return;
  fmt::format_to(std::back_inserter(html),
                 "<div class=\"scroll\"><table class=\"layers\">\n<thead><tr><th>Node</th><th>Op</th><th>Replacement</th>"
                 "<th class=\"num\">ms before</th><th class=\"num\">ms after</th><th class=\"num\">MACs before</th>"
                 "<th class=\"num\">MACs after</th><th class=\"num\">Fidelity error</th><th class=\"num\">Sensitivity ({})</th>"
                 "<th class=\"num\">Candidates</th></tr></thead>\n<tbody>\n",
                 loss_unit(report));
  for (const LayerChoice& layer : report.layers) layer_row(html, layer, report);
  html += "</tbody>\n";
  layer_totals(html, report);
  html += "</table></div>\n";
}

void instructions(std::string& html, const AdaptReport& report) {
  if (changed_layer_count(report) == 0) return;
  html += "<h3>Instructions of the changed layers</h3>\n";
  for (const LayerChoice& layer : report.layers) {
    if (layer.kept) continue;
    fmt::format_to(std::back_inserter(html),
                   "<details><summary><code>{}</code>: {}</summary>\n<p>Original:</p><pre>{}</pre>\n<p>Chosen:</p><pre>{}</pre>\n</details>\n",
                   escape(layer.node), escape(layer.derivation), escape(layer.original_expr), escape(layer.chosen_expr));
  }
}

void layers_section(std::string& html, const AdaptReport& report) {
  html += "<h2>Layers</h2>\n<p>Latency of each searched operator timed alone on the backend, before and after.</p>\n";
  html += "<div class=\"scroll\">" + layer_bars(report) + "</div>\n";
  layer_table(html, report);
  instructions(html, report);
}

// Folded, since a configuration can change dozens of operators.
std::string changes_cell(const Attempt& attempt) {
  if (attempt.changes.empty()) return "–";
  std::string items;
  for (const auto& [node, derivation] : attempt.changes) {
    fmt::format_to(std::back_inserter(items), "<li><code>{}</code>: {}</li>", escape(node), escape(derivation));
  }
  return fmt::format("<details><summary>{} operator{}</summary><ul>{}</ul></details>", attempt.changes.size(),
                     attempt.changes.size() == 1 ? "" : "s", items);
}

void attempt_row(std::string& html, size_t number, const Attempt& attempt, const AdaptReport& report) {
  bool known = attempt.front_index >= 0 && static_cast<size_t>(attempt.front_index) < report.front.size();
  const FrontPoint* point = known ? &report.front[static_cast<size_t>(attempt.front_index)] : nullptr;
  fmt::format_to(std::back_inserter(html),
                 "<tr><td class=\"num\" title=\"front index {}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                 "<td class=\"num\">{}</td><td class=\"nowrap\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                 attempt.front_index, number, point ? milliseconds(point->predicted_latency_ms) + " ms" : "–",
                 point ? loss_value(point->predicted_loss, report) : "–", speedup_words(attempt.speedup),
                 quality_change(attempt.quality_drop, report), attempt.meets_constraint ? "yes" : "no", changes_cell(attempt),
                 escape(attempt.outcome));
}

void attempts_section(std::string& html, const AdaptReport& report) {
  if (report.attempts.empty()) return;
  fmt::format_to(std::back_inserter(html),
                 "<h2>Attempts</h2>\n<p>Configurations fine-tuned and measured, in order; a later one was tried when an "
                 "earlier one missed the constraint.</p>\n<div class=\"scroll\"><table>\n<thead><tr><th class=\"num\">#</th>"
                 "<th class=\"num\">Predicted latency</th><th class=\"num\">Predicted loss ({})</th>"
                 "<th class=\"num\">Measured speedup</th><th>Quality</th><th>Met</th><th>Replaced</th><th>Outcome</th></tr></thead>\n<tbody>\n",
                 loss_unit(report));
  for (size_t i = 0; i < report.attempts.size(); ++i) attempt_row(html, i + 1, report.attempts[i], report);
  html += "</tbody>\n</table></div>\n";
}

std::string share_words(double percent) {
  if (percent > 0 && percent < 0.5) return "&lt;1%";
  return fmt::format("{:.0f}%", percent);
}

void stages_section(std::string& html, const AdaptReport& report) {
  if (report.stages.empty()) return;
  double total = 0;
  for (const StageTime& stage : report.stages) total += std::isfinite(stage.seconds) ? std::max(0.0, stage.seconds) : 0;
  html += "<h2>Where the time went</h2>\n<table>\n<thead><tr><th>Stage</th><th class=\"num\">Time</th><th>Share</th></tr></thead>\n<tbody>\n";
  for (const StageTime& stage : report.stages) {
    double share = total > 0 && std::isfinite(stage.seconds) ? std::max(0.0, stage.seconds) / total * 100 : 0;
    fmt::format_to(std::back_inserter(html),
                   "<tr><td>{}</td><td class=\"num\">{}</td><td><span class=\"share\" style=\"width:{:.0f}px\"></span> {}</td></tr>\n",
                   escape(stage.stage), duration(stage.seconds), share * 2, share_words(share));
  }
  fmt::format_to(std::back_inserter(html), "</tbody>\n<tfoot><tr><td>total</td><td class=\"num\">{}</td><td></td></tr></tfoot>\n</table>\n",
                 duration(total));
}

void narrowed_section(std::string& html, const AdaptReport& report) {
  if (report.narrowed.empty()) return;
  fmt::format_to(std::back_inserter(html), "<h2>Narrowed channels and dropped branches</h2>\n<p>{} groups of channels that several "
                 "operators share narrowed, or residual branches and operators dropped, before the per-operator search:</p>\n<ul>\n", report.narrowed.size());
  for (const auto& [group, derivation] : report.narrowed) fmt::format_to(std::back_inserter(html), "<li><code>{}</code></li>\n", escape(derivation));
  html += "</ul>\n";
}

// Every class when there are few; otherwise the ones the adapted model lost most on.
void classes_section(std::string& html, const AdaptReport& report) {
  if (report.classes.empty()) return;
  constexpr size_t kAllUpTo = 20, kLargestDrops = 10;
  std::vector<ClassResult> shown = report.classes;
  std::string intro = "Test accuracy of each class, before and after.";
  if (shown.size() > kAllUpTo) {
    std::stable_sort(shown.begin(), shown.end(),
                     [](const ClassResult& a, const ClassResult& b) { return a.original - a.adapted > b.original - b.adapted; });
    shown.resize(kLargestDrops);
    intro = fmt::format("The {} of {} classes whose test accuracy dropped most (report.json has every class).", kLargestDrops,
                        report.classes.size());
  }
  fmt::format_to(std::back_inserter(html),
                 "<h2>Classes</h2>\n<p>{}</p>\n<table>\n<thead><tr><th>Class</th><th class=\"num\">Test images</th>"
                 "<th class=\"num\">Original</th><th class=\"num\">Adapted</th><th class=\"num\">Change (points)</th></tr></thead>\n<tbody>\n",
                 intro);
  for (const ClassResult& c : shown) {
    fmt::format_to(std::back_inserter(html),
                   "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.2f}%</td><td class=\"num\">{:.2f}%</td>"
                   "<td class=\"num\">{:+.2f}</td></tr>\n",
                   escape(c.name), c.images, c.original, c.adapted, c.adapted - c.original);
  }
  html += "</tbody>\n</table>\n";
}

void notes_section(std::string& html, const AdaptReport& report) {
  if (report.notes.empty()) return;
  html += "<h2>Notes</h2>\n<ul>\n";
  for (const std::string& note : report.notes) fmt::format_to(std::back_inserter(html), "<li>{}</li>\n", escape(note));
  html += "</ul>\n";
}

void detail_row(std::string& html, const char* name, const std::string& value) {
  fmt::format_to(std::back_inserter(html), "<tr><th>{}</th><td>{}</td></tr>\n", name, value);
}

void run_details_section(std::string& html, const AdaptReport& report) {
  html += "<h2>Run details</h2>\n<table>\n<tbody>\n";
  detail_row(html, "Model", "<code>" + escape(report.model) + "</code>");
  detail_row(html, "Data", "<code>" + escape(report.data) + "</code>");
  detail_row(html, "Target", escape(report.target));
  std::string backend = backend_words(report.backend);
  detail_row(html, "Backend", escape(report.backend) + (backend.empty() ? "" : " <span class=\"muted\">(" + escape(backend) + ")</span>"));
  detail_row(html, "Threads", fmt::format("{}", report.threads));
  detail_row(html, "Machine", escape(report.machine));
  detail_row(html, "Seed", fmt::format("{}", report.seed));
  detail_row(html, "Quality metric", is_regression(report) ? "mean absolute error (lower is better)" : "test accuracy in percent (higher is better)");
  detail_row(html, "Finished at", report.finished_at.empty() ? kNotAvailable : escape(report.finished_at) + " <span class=\"muted\">(UTC)</span>");
  html += "</tbody>\n</table>\n";
}

void meaning_section(std::string& html, const AdaptReport& report) {
  auto out = std::back_inserter(html);
  html += "<h2>What these figures mean</h2>\n";
  fmt::format_to(out,
                 "<p><strong>Latency</strong> is the median of repeated {}-thread runs at batch size 1 on the <code>{}</code> "
                 "backend; p10–p90 is the spread between the 10th and 90th percentiles. The original and adapted "
                 "models were timed interleaved (one run of each in turn) in one process, so the speedup compares "
                 "them under the same machine load. Per-layer latencies time each operator alone; their sum is not "
                 "the model's latency.</p>\n",
                 report.threads, escape(report.backend));
  fmt::format_to(out,
                 "<p><strong>{}</strong> is measured on the test set for both models after fine-tuning. "
                 "<strong>MACs</strong> are multiply-accumulates for one input.</p>\n",
                 is_regression(report) ? "MAE (mean absolute error)" : "Accuracy");
  html += "<p><strong>Fidelity error</strong> is the normalised output error of a layer's replacement on held-out "
          "recorded inputs of that layer, after the replacement was distilled locally to imitate the original "
          "(0% means identical outputs). <strong>Sensitivity</strong> is how much validation quality drops when "
          "only that layer is replaced by its best candidate. <strong>Predicted</strong> latency and loss (the "
          "trade-off plot) come from the latency model and the per-layer measurements, before fine-tuning; the "
          "table at the top is measured after fine-tuning.</p>\n";
}

}  // namespace

std::string to_html(const AdaptReport& report) {
  std::string html;
  head(html, report);
  title_and_verdict(html, report);
  summary(html, report);
  front_section(html, report);
  narrowed_section(html, report);
  layers_section(html, report);
  attempts_section(html, report);
  classes_section(html, report);
  stages_section(html, report);
  notes_section(html, report);
  run_details_section(html, report);
  meaning_section(html, report);
  html += "<p class=\"muted\">Written by gos adapt. The same figures, machine-readable, are in <code>report.json</code> beside this page.</p>\n";
  html += "</body>\n</html>\n";
  return html;
}

}  // namespace gos::report
