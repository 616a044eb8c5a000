#include "terminal.hpp"

#include <fcntl.h>
#include <histedit.h>
#include <langinfo.h>
#include <poll.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <iterator>

#include "command.hpp"

namespace parley_cli {
namespace {

// Set by the signal handlers, read by the session thread.
volatile std::sig_atomic_t g_sigint = 0;
volatile std::sig_atomic_t g_sigtstp = 0;
volatile std::sig_atomic_t g_sigcont = 0;
volatile std::sig_atomic_t g_sigwinch = 0;
volatile std::sig_atomic_t g_sigterm = 0;  // SIGTERM or SIGHUP
// The self-pipe's write end while a Terminal is open, else -1. Lock-free, so
// signal handlers may read it.
std::atomic<int> g_wake_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free);

constexpr int kSignals[] = {SIGINT, SIGTSTP, SIGCONT, SIGWINCH, SIGTERM, SIGHUP};
struct sigaction g_saved_actions[std::size(kSignals)];

void on_signal(int sig) {
  const int saved_errno = errno;
  switch (sig) {
    case SIGINT:
      g_sigint = 1;
      break;
    case SIGTSTP:
      g_sigtstp = 1;
      break;
    case SIGCONT:
      g_sigcont = 1;
      break;
    case SIGWINCH:
      g_sigwinch = 1;
      break;
    default:
      g_sigterm = 1;
      break;
  }
  if (const int fd = g_wake_fd.load(); fd >= 0) {
    [[maybe_unused]] const ssize_t n = ::write(fd, "s", 1);
  }
  errno = saved_errno;
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (std::size_t i = 0; i < std::size(kSignals); ++i) {
    ::sigaction(kSignals[i], &sa, &g_saved_actions[i]);
  }
}

void restore_signal_handlers() {
  for (std::size_t i = 0; i < std::size(kSignals); ++i) {
    ::sigaction(kSignals[i], &g_saved_actions[i], nullptr);
  }
}

bool utf8_locale() {
  const char* codeset = ::nl_langinfo(CODESET);
  return codeset != nullptr &&
         (::strcasecmp(codeset, "UTF-8") == 0 || ::strcasecmp(codeset, "utf8") == 0);
}

// `s` with each escape sequence wrapped in \1 markers, so that libedit
// (EL_PROMPT_ESC) does not count it as columns.
std::string mark_escapes(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] != '\033') {
      out += s[i++];
      continue;
    }
    std::size_t j = i + 1;
    if (j < s.size() && s[j] == '[') {
      ++j;
      while (j < s.size() && !(s[j] >= 0x40 && s[j] <= 0x7e)) ++j;
    }
    j = std::min(j + 1, s.size());
    out += '\1';
    out.append(s, i, j - i);
    out += '\1';
    i = j;
  }
  return out;
}

// The longest prefix of `s` that fits in `columns`, escape sequences kept,
// with the attributes reset at the end when it had any.
std::string fit(const std::string& s, std::size_t columns) {
  if (display_width(s) <= columns) return s;
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t len = 1;
    if (s[i] == '\033') {
      std::size_t j = i + 1;
      if (j < s.size() && s[j] == '[') {
        ++j;
        while (j < s.size() && !(s[j] >= 0x40 && s[j] <= 0x7e)) ++j;
      }
      len = std::min(j + 1, s.size()) - i;
    } else {
      while (i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xc0) == 0x80) ++len;
      if (display_width(out + s.substr(i, len)) > columns) break;
    }
    out.append(s, i, len);
    i += len;
  }
  if (out.find('\033') != std::string::npos) out += "\033[0m";
  return out;
}

int rows_of(const std::string& line, int columns) {
  const auto width = static_cast<int>(display_width(line));
  return width == 0 ? 1 : (width + columns - 1) / columns;
}

}  // namespace

// ---- life cycle -----------------------------------------------------------------

std::unique_ptr<Terminal> Terminal::open(const std::string& history_file, bool color,
                                         std::string* why) {
  if (::isatty(STDIN_FILENO) == 0 || ::isatty(STDOUT_FILENO) == 0) {
    *why = "stdin or stdout is not a terminal";
    return nullptr;
  }
  if (g_wake_fd >= 0) {
    *why = "a terminal is already open";
    return nullptr;
  }
  // libedit decodes keys with the locale; messages are UTF-8 whatever it says.
  std::setlocale(LC_CTYPE, "");
  if (!utf8_locale()) std::setlocale(LC_CTYPE, "C.UTF-8");

  std::unique_ptr<Terminal> t(new Terminal());
  t->color_ = color;
  int wake[2];
  int err[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    *why = "pipe failed";
    return nullptr;
  }
  t->wake_read_ = wake[0];
  t->wake_write_ = wake[1];
  if (::pipe2(err, O_CLOEXEC | O_NONBLOCK) != 0) {
    *why = "pipe failed";
    return nullptr;
  }
  t->stderr_read_ = err[0];

  t->el_ = el_init("parley-cli", stdin, stdout, stderr);
  t->hist_ = history_init();
  if (t->el_ == nullptr || t->hist_ == nullptr) {
    ::close(err[1]);
    *why = "libedit could not start";
    return nullptr;
  }
  HistEvent ev;
  history(t->hist_, &ev, H_SETSIZE, 1000);
  history(t->hist_, &ev, H_SETUNIQUE, 1);
  t->history_file_ = history_file;
  if (!history_file.empty()) history(t->hist_, &ev, H_LOAD, history_file.c_str());

  EditLine* el = t->el_;
  el_set(el, EL_CLIENTDATA, t.get());
  el_set(el, EL_EDITOR, "emacs");
  el_set(el, EL_HIST, history, t->hist_);
  el_set(el, EL_PROMPT_ESC, &Terminal::prompt_of, '\1');
  // The wide call keeps the (static) strings; the narrow one copies them and
  // el_end() never frees the copies.
  el_wset(el, EL_ADDFN, L"parley-complete", L"complete a command or channel name",
          &Terminal::complete_key);
  el_wset(el, EL_ADDFN, L"parley-interrupt", L"drop the line, or quit on an empty one",
          &Terminal::interrupt_key);
  // What people expect from readline, on top of libedit's emacs map.
  const char* const bindings[][2] = {
      {"^I", "parley-complete"},         {"^C", "parley-interrupt"},
      {"^W", "ed-delete-prev-word"},     {"^R", "em-inc-search-prev"},
      {"\\e[1~", "ed-move-to-beg"},      {"\\e[4~", "ed-move-to-end"},
      {"\\e[7~", "ed-move-to-beg"},      {"\\e[8~", "ed-move-to-end"},
      {"\\e[H", "ed-move-to-beg"},       {"\\e[F", "ed-move-to-end"},
      {"\\eOH", "ed-move-to-beg"},       {"\\eOF", "ed-move-to-end"},
      {"\\e[3~", "ed-delete-next-char"}, {"\\e[1;5C", "em-next-word"},
      {"\\e[1;5D", "ed-prev-word"},
  };
  for (const auto& b : bindings) el_set(el, EL_BIND, b[0], b[1], nullptr);
  el_source(el, nullptr);  // the user's ~/.editrc, if any

  // From here on, what anyone writes to fd 2 is shown above the prompt
  // instead of garbling it.
  t->saved_stderr_ = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  std::fflush(stderr);
  ::dup2(err[1], STDERR_FILENO);
  ::close(err[1]);

  for (volatile std::sig_atomic_t* flag :
       {&g_sigint, &g_sigtstp, &g_sigcont, &g_sigwinch, &g_sigterm}) {
    *flag = 0;
  }
  g_wake_fd = t->wake_write_;
  install_signal_handlers();
  t->restart_line("");  // raw mode, prompt drawn
  return t;
}

Terminal::~Terminal() {
  if (el_ != nullptr) {
    if (g_wake_fd >= 0) {
      erase_footer();
      std::fflush(stdout);
      el_set(el_, EL_UNBUFFERED, 0);  // cooked mode again
    }
    el_end(el_);
  }
  if (hist_ != nullptr) {
    save_history();
    history_end(hist_);
  }
  if (g_wake_fd >= 0) {
    restore_signal_handlers();
    g_wake_fd = -1;
  }
  if (saved_stderr_ >= 0) {
    std::fflush(stderr);
    char buf[4096];
    for (ssize_t n; (n = ::read(stderr_read_, buf, sizeof buf)) > 0;) {
      stderr_partial_.append(buf, static_cast<std::size_t>(n));
    }
    ::dup2(saved_stderr_, STDERR_FILENO);
    ::close(saved_stderr_);
    if (!stderr_partial_.empty()) {
      std::fwrite(stderr_partial_.data(), 1, stderr_partial_.size(), stderr);
    }
  }
  for (int fd : {wake_read_, wake_write_, stderr_read_}) {
    if (fd >= 0) ::close(fd);
  }
}

void Terminal::wake() { [[maybe_unused]] const ssize_t n = ::write(wake_write_, "w", 1); }

bool Terminal::take_interrupt() {
  if (interrupts_ == 0) return false;
  --interrupts_;
  return true;
}

void Terminal::save_history() {
  if (history_file_.empty() || hist_ == nullptr) return;
  HistEvent ev;
  if (history(hist_, &ev, H_SAVE, history_file_.c_str()) >= 0) {
    ::chmod(history_file_.c_str(), 0600);  // messages can be private
  }
}

// ---- the loop -------------------------------------------------------------------

void Terminal::wait(Clock::time_point deadline, Inbox& inbox, bool want_input) {
  for (;;) {
    char buf[64];
    while (::read(wake_read_, buf, sizeof buf) > 0) {
    }
    const int interrupts = interrupts_;
    handle_signals(inbox);
    read_stderr();
    if (interrupts_ != interrupts) return;
    if (inbox.has_event() || (want_input && inbox.has_input())) return;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) return;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    pollfd fds[3] = {{wake_read_, POLLIN, 0},
                     {stderr_read_, POLLIN, 0},
                     {input_ended_ ? -1 : STDIN_FILENO, POLLIN, 0}};
    if (::poll(fds, 3, static_cast<int>(std::min<long long>(ms, 1000))) <= 0) continue;
    if ((fds[2].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) {
      end_input(inbox);  // the terminal went away
    } else if ((fds[2].revents & POLLIN) != 0) {
      read_key(inbox);
    }
  }
}

void Terminal::handle_signals(Inbox& inbox) {
  if (g_sigint != 0) {  // an interrupt character other than Ctrl-C, or kill -INT
    g_sigint = 0;
    interrupt(inbox);
  }
  if (g_sigterm != 0) {
    g_sigterm = 0;
    if (input_ended_) {
      ++interrupts_;
    } else {
      end_input(inbox);
    }
  }
  if (g_sigtstp != 0) {
    g_sigtstp = 0;
    const std::string text = line_text();
    erase_footer();
    std::fflush(stdout);
    el_set(el_, EL_UNBUFFERED, 0);  // give the shell a cooked terminal
    struct sigaction dfl {};
    struct sigaction mine {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGTSTP, &dfl, &mine);
    ::raise(SIGTSTP);  // stops here until continued
    ::sigaction(SIGTSTP, &mine, nullptr);
    g_sigcont = 0;
    restart_line(text);
  }
  if (g_sigcont != 0) {
    // Continued after a stop we did not see coming: the shell may have reset
    // the terminal, so set it up again.
    g_sigcont = 0;
    const std::string text = line_text();
    emit("\r\033[J");
    restart_line(text);
  }
  if (g_sigwinch != 0) {
    g_sigwinch = 0;
    el_resize(el_);
    erase_footer();
    draw_footer();
    last_handle_ = 0;
  }
}

void Terminal::interrupt(Inbox& inbox) {
  if (input_ended_) {
    ++interrupts_;
  } else if (!line_text().empty()) {
    erase_footer();  // Ctrl-C drops the line, as in a shell
    restart_line("");
    if (!last_text_.empty()) {
      last_text_.clear();
      if (on_edit_) on_edit_("");
    }
  } else {
    end_input(inbox);
  }
}

void Terminal::disable_interrupt_character() {
  termios t{};
  if (::tcgetattr(STDIN_FILENO, &t) != 0 || t.c_cc[VINTR] == _POSIX_VDISABLE) return;
  t.c_cc[VINTR] = _POSIX_VDISABLE;
  ::tcsetattr(STDIN_FILENO, TCSANOW, &t);
}

unsigned char Terminal::interrupt_key(editline* el, int /*ch*/) {
  void* data = nullptr;
  el_get(el, EL_CLIENTDATA, &data);
  static_cast<Terminal*>(data)->interrupt_key_pressed_ = true;
  return CC_NORM;
}

void Terminal::read_key(Inbox& inbox) {
  int n = 0;
  const char* s = el_gets(el_, &n);
  if (interrupt_key_pressed_) {
    interrupt_key_pressed_ = false;
    interrupt(inbox);
    return;
  }
  if (s != nullptr && n > 0 && s[n - 1] == '\n') {
    std::string text(s, static_cast<std::size_t>(n - 1));
    // libedit has moved below the edit area: erase it and the status line,
    // so that the scrollback shows the message as sent, not as typed.
    const int rows = static_cast<int>((prompt_width_ + display_width(text)) /
                                      static_cast<std::size_t>(columns())) +
                     1 + (status_.empty() ? 0 : 1);
    emit("\r\033[" + std::to_string(rows) + "A\033[J");
    if (!is_blank(text)) {
      HistEvent ev;
      history(hist_, &ev, H_ENTER, text.c_str());
      save_history();
      const std::size_t first = text.find_first_not_of(" \t");
      if (text[first] == '/') emit(prompt_ + printable(text) + "\r\n");  // commands stay visible
    }
    last_handle_ = 0;
    restart_line("");
    last_text_.clear();  // no on_edit_: what the line means decides about typing
    inbox.push_line(std::move(text));
    return;
  }
  if (s != nullptr && n == 1 && s[0] == '\x04') {  // Ctrl-D on an empty line
    end_input(inbox);
    return;
  }
  if (s == nullptr && n == 0) {  // end of file or a read error
    end_input(inbox);
    return;
  }
  std::string text = line_text();
  if (text != last_text_) {
    last_text_ = text;
    if (on_edit_) on_edit_(text);
  }
}

void Terminal::end_input(Inbox& inbox) {
  if (input_ended_) {
    ++interrupts_;
    return;
  }
  input_ended_ = true;
  erase_footer();
  prompt_.clear();
  marked_prompt_.clear();
  prompt_width_ = 0;
  restart_line("");
  if (!last_text_.empty()) {
    last_text_.clear();
    if (on_edit_) on_edit_("");
  }
  inbox.push_end_of_input();
}

void Terminal::read_stderr() {
  char buf[4096];
  for (ssize_t n; (n = ::read(stderr_read_, buf, sizeof buf)) > 0;) {
    stderr_partial_.append(buf, static_cast<std::size_t>(n));
  }
  for (std::size_t nl; (nl = stderr_partial_.find('\n')) != std::string::npos;) {
    std::string line = stderr_partial_.substr(0, nl);
    stderr_partial_.erase(0, nl + 1);
    if (!is_blank(line)) print(dim(printable(line)));
  }
}

// ---- drawing --------------------------------------------------------------------

const char* Terminal::prompt_of(editline* el) {
  void* data = nullptr;
  el_get(el, EL_CLIENTDATA, &data);
  return static_cast<Terminal*>(data)->marked_prompt_.c_str();
}

std::string Terminal::line_text(std::string* before_cursor) const {
  const LineInfo* li = el_line(el_);
  if (before_cursor != nullptr) before_cursor->assign(li->buffer, li->cursor);
  return std::string(li->buffer, li->lastchar);
}

int Terminal::columns() const {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

void Terminal::emit(const std::string& bytes) {
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
}

void Terminal::erase_footer() {
  std::string before;
  line_text(&before);
  const int up = static_cast<int>((prompt_width_ + display_width(before)) /
                                  static_cast<std::size_t>(columns())) +
                 (status_.empty() ? 0 : 1);
  std::string s = "\r";
  if (up > 0) s += "\033[" + std::to_string(up) + "A";
  emit(s + "\033[J");
}

void Terminal::draw_footer() {
  if (!status_.empty()) {
    emit(fit(status_, static_cast<std::size_t>(std::max(columns() - 1, 1))) + "\r\n");
  }
  std::fflush(stdout);
  el_set(el_, EL_REFRESH);  // prompt and line, cursor where it belongs
}

void Terminal::restart_line(const std::string& text) {
  // Leaving and re-entering unbuffered mode is how libedit starts a new
  // line: it resets the buffer and the history position and prints the
  // prompt, which draw_footer() then draws again below the status line.
  std::fflush(stdout);
  el_set(el_, EL_UNBUFFERED, 0);
  el_set(el_, EL_UNBUFFERED, 1);
  disable_interrupt_character();
  emit("\r\033[J");
  if (!text.empty()) el_insertstr(el_, text.c_str());
  draw_footer();
}

int Terminal::write_lines(const std::string& text) {
  const int cols = columns();
  std::string out;
  int rows = 0;
  std::size_t start = 0;
  for (;;) {
    const std::size_t nl = text.find('\n', start);
    const std::string line = text.substr(start, nl == std::string::npos ? nl : nl - start);
    out += line + "\r\n";
    rows += rows_of(line, cols);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  emit(out);
  return rows;
}

std::uint64_t Terminal::print(const std::string& text) {
  erase_footer();
  last_rows_ = write_lines(text);
  last_columns_ = columns();
  last_handle_ = next_handle_++;
  draw_footer();
  return last_handle_;
}

bool Terminal::replace(std::uint64_t handle, const std::string& text) {
  if (handle == 0 || handle != last_handle_ || columns() != last_columns_) return false;
  erase_footer();
  emit("\033[" + std::to_string(last_rows_) + "A\033[J");
  last_rows_ = write_lines(text);
  draw_footer();
  return true;
}

void Terminal::set_status(const std::string& text) {
  if (text == status_) return;
  erase_footer();
  status_ = text;
  draw_footer();
}

void Terminal::set_prompt(const std::string& text) {
  if (input_ended_ || text == prompt_) return;
  erase_footer();
  prompt_ = text;
  marked_prompt_ = mark_escapes(text);
  prompt_width_ = display_width(text);
  draw_footer();
}

// ---- completion -----------------------------------------------------------------

unsigned char Terminal::complete_key(editline* el, int /*ch*/) {
  void* data = nullptr;
  el_get(el, EL_CLIENTDATA, &data);
  return static_cast<Terminal*>(data)->complete();
}

unsigned char Terminal::complete() {
  std::string before;
  line_text(&before);
  const std::size_t space = before.find_last_of(" \t");
  const std::size_t start = space == std::string::npos ? 0 : space + 1;
  const std::string word = before.substr(start);
  std::vector<std::string> candidates;
  if (start == 0) {
    if (word.empty() || word[0] != '/') return CC_ERROR;
    for (std::string_view name : command_names()) candidates.emplace_back(name);
  } else {
    // A channel name, as the first argument of a command that takes one.
    const std::size_t first_end = before.find_first_of(" \t");
    const std::size_t second = before.find_first_not_of(" \t", first_end);
    if (second != start || !takes_channel(before.substr(0, first_end)) || !channel_names_) {
      return CC_ERROR;
    }
    candidates = channel_names_();
  }
  std::vector<std::string> matches;
  for (const std::string& c : candidates) {
    if (c.compare(0, word.size(), word) == 0) matches.push_back(c);
  }
  if (matches.empty()) return CC_ERROR;
  std::string common = matches.front();
  for (const std::string& m : matches) {
    std::size_t k = 0;
    while (k < common.size() && k < m.size() && common[k] == m[k]) ++k;
    common.resize(k);
  }
  std::string insert = common.substr(word.size());
  if (matches.size() == 1) insert += ' ';
  if (!insert.empty()) {
    el_insertstr(el_, insert.c_str());
    return CC_REFRESH;
  }
  std::string list;
  for (const std::string& m : matches) list += (list.empty() ? "" : "  ") + m;
  print(dim(printable(list)));
  return CC_REFRESH;
}

}  // namespace parley_cli
