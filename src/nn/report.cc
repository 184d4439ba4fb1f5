// `lowp report`: each format's cost (validation loss) and savings (bytes,
// speed) on a model, measured with the runtime on packed weights.
#include "lowp/nn/report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "lowp/error.h"
#include "lowp/storage/packed_matrix.h"

namespace lowp::nn {

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
    }
  }
  return out;
}

namespace {

std::string num(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) for about `count` ticks.
double nice_step(double span, int count) {
  const double raw = span / count;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= raw) return m * p;
  }
  return 10 * p;
}

int decimals_for(double step) {
  return step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
}

// Colour by family, so the chart reads at a glance.
const char* colour_of(const std::string& f) {
  if (f.rfind("mx", 0) == 0) return "#d95f02";
  if (f.rfind("nvfp4", 0) == 0) return "#7570b3";
  if (f.rfind("int", 0) == 0 || f.rfind("uint", 0) == 0) return "#1b9e77";
  return "#1f4e9c";
}

}  // namespace

std::vector<std::string> default_report_formats() {
  return {"fp32",       "bf16",  "fp8_e4m3", "fp8_e5m2", "mxfp8_e4m3",   "mxfp6_e3m2",
          "mxfp6_e2m3", "mxfp4", "mxint8",   "nvfp4",    "int8:channel", "int4:group32"};
}

void check_validation_text(std::span<const std::uint8_t> text, std::string_view source) {
  const std::string where = quoted(std::string(source));
  if (text.empty()) throw Error("validation text " + where + " is empty");
  if (text.size() < 2) {
    throw Error("validation text " + where + " is too short (need at least 2 bytes)");
  }
  static constexpr std::uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
  std::size_t i = 0;
  while (i < text.size()) {
    const std::uint8_t c = text[i];
    std::size_t n = 0;  // continuation bytes
    std::uint32_t cp = c;
    if (c >= 0x80) {
      if ((c & 0xE0) == 0xC0) {
        n = 1, cp = c & 0x1Fu;
      } else if ((c & 0xF0) == 0xE0) {
        n = 2, cp = c & 0x0Fu;
      } else if ((c & 0xF8) == 0xF0) {
        n = 3, cp = c & 0x07u;
      } else {
        n = 4;  // never valid as a lead byte
      }
    }
    bool ok = n < 4 && i + n < text.size();
    for (std::size_t k = 1; ok && k <= n; ++k) {
      ok = (text[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (text[i + k] & 0x3Fu);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if (ok && n > 0 && (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
      ok = false;
    if (!ok) {
      throw Error("validation text " + where + " is not UTF-8 (bad byte sequence at offset " +
                  std::to_string(i) + ")");
    }
    i += n + 1;
  }
}

ReportText byte_tokens(std::span<const std::uint8_t> text) {
  ReportText t;
  t.tokens.assign(text.begin(), text.end());
  t.token_bytes.assign(text.size(), 1);
  return t;
}

namespace {
// A row's measurements: the model's size and its evaluation.
ReportRow measured_row(const EvalResult& e, double bits_per_weight, std::uint64_t model_bytes) {
  ReportRow row;
  row.bits_per_weight = bits_per_weight;
  row.model_bytes = model_bytes;
  row.nats_per_byte = e.nats_per_byte();
  row.bits_per_byte = e.bits_per_byte();
  row.perplexity = e.perplexity();
  row.tokens = e.tokens;
  row.tokens_per_second = e.seconds > 0 ? static_cast<double>(e.tokens) / e.seconds : 0.0;
  return row;
}
}  // namespace

Report run_report(const Transformer& model, const ReportText& text, const ReportOptions& opt,
                  const std::function<void(const ReportRow&)>& progress) {
  if (opt.formats.empty() && opt.extra.empty()) throw Error("report: no formats given");
  // Parse every name first, so a typo fails before minutes of work.
  std::vector<MatrixFormat> formats;
  for (const std::string& name : opt.formats) formats.push_back(parse_matrix_format(name));
  Report r;
  r.parameters = model.parameter_count();
  r.threads = std::max(1u, opt.threads);
  r.activations = opt.activations.empty() ? "fp32" : opt.activations;

  auto evaluate = [&](Transformer cast, const MatrixFormat& f, bool with_activations) {
    if (with_activations && !opt.activations.empty())
      cast = cast.with_activations(parse_matrix_format(opt.activations));
    if (with_activations && opt.finish) cast = opt.finish(std::move(cast));
    const EvalResult e = cast.evaluate(text.tokens, text.token_bytes, r.threads, text.bos);
    ReportRow row = measured_row(e, cast.linear_bits_per_weight(), cast.weight_bytes());
    row.format = f.name;
    return row;
  };
  const std::vector<std::string> methods =
      opt.methods.empty() ? std::vector<std::string>{"rtn"} : opt.methods;
  for (const std::string& m : methods) {
    if (m != "rtn" && !opt.quantize) throw Error("report: no quantizer for method " + quoted(m));
  }

  // The baseline first, so every row can carry its delta as it is printed:
  // the FP32 model, with FP32 activations even when the rows quantize them
  // (so the fp32 row then shows what quantizing the activations alone costs).
  const MatrixFormat fp32_format = parse_matrix_format("fp32");
  ReportRow fp32 = evaluate(model.with_weights(fp32_format), fp32_format, false);
  r.baseline_bits_per_byte = fp32.bits_per_byte;
  const double baseline = fp32.bits_per_byte;
  for (const MatrixFormat& f : formats) {
    std::optional<Transformer> prepared;
    if (opt.prepare && f.name != "fp32") prepared = opt.prepare(model, f);
    const Transformer& base = prepared ? *prepared : model;
    for (const std::string& m : methods) {
      // A plain fp32 cast is the same for every method: one row.
      if (f.name == "fp32" && m != methods.front()) continue;
      if (m != "rtn" && f.name != "fp32" && opt.applies && !opt.applies(f, m)) continue;
      const auto t0 = std::chrono::steady_clock::now();
      Transformer q =
          m == "rtn" || f.name == "fp32" ? base.with_weights(f) : opt.quantize(base, f, m);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ReportRow row;
      if (f.name == "fp32" && opt.activations.empty()) {
        row = fp32;
      } else {
        row = evaluate(q, f, true);
      }
      if (m != "rtn" && f.name != "fp32") {
        row.method = m;
        row.quantize_seconds = seconds;
      }
      const auto add = [&](ReportRow x) {
        x.delta_bits = x.bits_per_byte - baseline;
        x.delta_percent = 100.0 * x.delta_bits / baseline;
        if (progress) progress(x);
        r.rows.push_back(std::move(x));
      };
      add(std::move(row));
      for (int bits : opt.slices) {
        if (!opt.slice) break;
        std::optional<Transformer> s = opt.slice(q, f, bits);
        if (!s) break;
        ReportRow x = evaluate(std::move(*s), f, true);
        x.format = f.name + "@" + std::to_string(bits);
        x.method = m;
        add(std::move(x));
      }
    }
  }
  for (const ReportExtra& x : opt.extra) {
    const auto t0 = std::chrono::steady_clock::now();
    ReportRow row;
    double seconds = 0;
    if (x.measure) {
      const ReportExtra::Measured m = x.measure(text, r.threads);
      row = measured_row(m.eval, m.bits_per_weight, m.model_bytes);
      // The time to prepare the model: all but the evaluation.
      seconds = std::max(
          0.0, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() -
                   m.eval.seconds);
    } else {
      Transformer q = x.build(model);
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      row = evaluate(std::move(q), fp32_format, true);
    }
    row.format = x.format;
    row.method = x.method;
    row.quantize_seconds = seconds;
    row.delta_bits = row.bits_per_byte - baseline;
    row.delta_percent = 100.0 * row.delta_bits / baseline;
    if (progress) progress(row);
    r.rows.push_back(std::move(row));
  }
  return r;
}

std::string report_svg(const Report& r) {
  constexpr double kW = 760, kH = 480, kLeft = 80, kRight = 30, kTop = 60, kBottom = 60;
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  double xmax = 0, ymin = HUGE_VAL, ymax = -HUGE_VAL;
  for (const ReportRow& row : r.rows) {
    xmax = std::max(xmax, static_cast<double>(row.model_bytes) / 1e6);
    if (std::isfinite(row.bits_per_byte)) {
      ymin = std::min(ymin, row.bits_per_byte);
      ymax = std::max(ymax, row.bits_per_byte);
    }
  }
  if (!(ymin <= ymax)) ymin = 0, ymax = 1;
  if (ymax - ymin < 1e-3) ymin -= 0.01, ymax += 0.01;
  const double ypad = 0.08 * (ymax - ymin);
  ymin -= ypad, ymax += ypad;
  const double xstep = nice_step(xmax > 0 ? xmax : 1, 6);
  xmax = std::ceil((xmax > 0 ? xmax * 1.05 : 1) / xstep) * xstep;
  const double ystep = nice_step(ymax - ymin, 6);
  auto px = [&](double mb) { return kLeft + pw * mb / xmax; };
  auto py = [&](double b) { return kTop + ph * (1 - (b - ymin) / (ymax - ymin)); };

  std::string s;
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(kW, 0) + "\" height=\"" +
       num(kH, 0) + "\" viewBox=\"0 0 " + num(kW, 0) + " " + num(kH, 0) +
       "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + num(kW / 2, 1) + "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">" +
       xml_escape("lowp report: " + r.model + " — model size vs validation loss") + "</text>\n";
  s += "<text x=\"" + num(kW / 2, 1) + "\" y=\"42\" text-anchor=\"middle\" fill=\"#555\">" +
       xml_escape("text: " + r.text + "; activations: " + r.activations) + "</text>\n";
  // Grid and ticks.
  const int ydec = decimals_for(ystep) + 1, xdec = decimals_for(xstep);
  for (double y = std::ceil(ymin / ystep) * ystep; y <= ymax + 1e-12; y += ystep) {
    s += "<line x1=\"" + num(kLeft, 1) + "\" x2=\"" + num(kLeft + pw, 1) + "\" y1=\"" +
         num(py(y), 1) + "\" y2=\"" + num(py(y), 1) + "\" stroke=\"#e4e4e4\"/>\n";
    s += "<text x=\"" + num(kLeft - 6, 1) + "\" y=\"" + num(py(y) + 4, 1) +
         "\" text-anchor=\"end\">" + num(y, ydec) + "</text>\n";
  }
  for (double x = 0; x <= xmax + 1e-12; x += xstep) {
    s += "<line x1=\"" + num(px(x), 1) + "\" x2=\"" + num(px(x), 1) + "\" y1=\"" + num(kTop, 1) +
         "\" y2=\"" + num(kTop + ph, 1) + "\" stroke=\"#e4e4e4\"/>\n";
    s += "<text x=\"" + num(px(x), 1) + "\" y=\"" + num(kTop + ph + 18, 1) +
         "\" text-anchor=\"middle\">" + num(x, xdec) + "</text>\n";
  }
  s += "<rect x=\"" + num(kLeft, 1) + "\" y=\"" + num(kTop, 1) + "\" width=\"" + num(pw, 1) +
       "\" height=\"" + num(ph, 1) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  s += "<text x=\"" + num(kLeft + pw / 2, 1) + "\" y=\"" + num(kH - 16, 1) +
       "\" text-anchor=\"middle\">model size (MB, every parameter as "
       "stored)</text>\n";
  s += "<text transform=\"translate(20 " + num(kTop + ph / 2, 1) +
       ") rotate(-90)\" text-anchor=\"middle\">validation loss (bits per "
       "byte)</text>\n";
  // Points first, then labels placed greedily: each label takes the first of
  // a list of positions around its point (right, left, then rows above and
  // below with a leader line) that overlaps no point and no earlier label.
  struct Box {
    double x0, y0, x1, y1;
  };
  std::vector<Box> taken;
  std::vector<std::pair<double, double>> at(r.rows.size());
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    const ReportRow& row = r.rows[i];
    if (!std::isfinite(row.bits_per_byte)) continue;
    const double x = px(static_cast<double>(row.model_bytes) / 1e6);
    const double y = py(std::clamp(row.bits_per_byte, ymin, ymax));
    at[i] = {x, y};
    taken.push_back({x - 6, y - 6, x + 6, y + 6});
    s += "<circle cx=\"" + num(x, 1) + "\" cy=\"" + num(y, 1) + "\" r=\"5\" fill=\"" +
         colour_of(row.format) + "\"><title>" +
         xml_escape(row.format + ": " + num(row.bits_per_byte, 4) + " bits/byte, " +
                    num(static_cast<double>(row.model_bytes) / 1e6, 3) + " MB") +
         "</title></circle>\n";
  }
  auto overlaps = [&](const Box& b) {
    if (b.x0 < kLeft || b.x1 > kLeft + pw || b.y0 < kTop || b.y1 > kTop + ph) return true;
    for (const Box& t : taken) {
      if (b.x0 < t.x1 && t.x0 < b.x1 && b.y0 < t.y1 && t.y0 < b.y1) return true;
    }
    return false;
  };
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    const ReportRow& row = r.rows[i];
    if (!std::isfinite(row.bits_per_byte)) continue;
    const auto [x, y] = at[i];
    const double w = 7.0 * static_cast<double>(row.format.size()), h = 13;
    bool placed = false;
    for (int level = 0; level <= 12 && !placed; ++level) {
      const double dy = (level % 2 ? -1.0 : 1.0) * 15.0 * ((level + 1) / 2);
      for (int side = 0; side < 2 && !placed; ++side) {
        const bool left = side == 1;
        const double lx = left ? x - 9 - w : x + 9;
        const double ly = y + dy;  // the label's vertical centre
        const Box box{lx, ly - h / 2, lx + w, ly + h / 2};
        if (overlaps(box) && level < 12) continue;
        taken.push_back(box);
        if (level > 0) {
          s += "<line x1=\"" + num(x, 1) + "\" y1=\"" + num(y, 1) + "\" x2=\"" +
               num(left ? lx + w : lx, 1) + "\" y2=\"" + num(ly, 1) +
               "\" stroke=\"#999\" stroke-width=\"0.7\"/>\n";
        }
        s += "<text x=\"" + num(left ? lx + w : lx, 1) + "\" y=\"" + num(ly + 4, 1) +
             "\" text-anchor=\"" + (left ? "end" : "start") + "\">" + xml_escape(row.format) +
             "</text>\n";
        placed = true;
      }
    }
  }
  s += "</svg>\n";
  return s;
}

}  // namespace lowp::nn
