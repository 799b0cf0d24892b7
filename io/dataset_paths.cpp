#include "io/dataset_paths.h"

#include <dirent.h>
#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/error.h"

namespace seis {

namespace {

constexpr size_t kMaxFiles = size_t{1} << 20;
constexpr int64_t kMaxListBytes = int64_t{64} << 20;

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_list_item(const std::string& item) { return item[0] == '@' || ends_with(item, ".txt"); }

bool has_glob_chars(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

class Expander {
 public:
  explicit Expander(const std::string& flag) : flag_(flag) {}

  // A file, directory or glob (lists handled by the caller); `where` names it in messages.
  void add_item(const std::string& item, const std::string& where) {
    struct stat st {};
    if (::stat(item.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) {
        add_directory(item, where);
      } else {
        push(item, where);
      }
      return;
    }
    if (has_glob_chars(item)) {
      add_glob(item, where);
      return;
    }
    push(item, where);  // missing: the set's open reports it, naming the file
  }

  void add_list(const std::string& list_path, const std::string& where) {
    struct stat st {};
    if (::stat(list_path.c_str(), &st) != 0) {
      throw InputError(where + ": cannot read the list of files: " + std::strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) throw InputError(where + ": is a directory, not a list of files");
    if (static_cast<int64_t>(st.st_size) > kMaxListBytes) {
      throw InputError(where + ": " + std::to_string(st.st_size) +
                       " bytes is too large for a list of files (at most 64 MiB)");
    }
    std::ifstream in(list_path);
    if (!in) throw InputError(where + ": cannot read the list of files: " + std::strerror(errno));
    const size_t slash = list_path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : list_path.substr(0, slash + 1);
    const size_t before = files_.size();
    std::string line;
    int64_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      const std::string item = trim(line);
      if (item.empty() || item[0] == '#') continue;
      const std::string at = list_path + " line " + std::to_string(number) + ": " + item;
      if (is_list_item(item)) throw InputError(at + ": a list of files cannot name another list");
      add_item(item[0] == '/' ? item : dir + item, at);
    }
    if (in.bad()) throw InputError(where + ": cannot read the list of files: " + std::strerror(errno));
    if (files_.size() == before) throw InputError(where + ": the list of files names no file");
  }

  std::vector<std::string> take() { return std::move(files_); }

 private:
  void push(const std::string& path, const std::string& where) {
    if (files_.size() >= kMaxFiles) {
      throw InputError(where + ": " + flag_ + " names more than " + std::to_string(kMaxFiles) +
                       " files; merge some of them");
    }
    files_.push_back(path);
  }

  void add_directory(const std::string& dir, const std::string& where) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) throw InputError(where + ": cannot list the directory: " + std::strerror(errno));
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name[0] == '.' || !(ends_with(name, ".h5") || ends_with(name, ".hdf5"))) continue;
      const std::string path = (ends_with(dir, "/") ? dir : dir + "/") + name;
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) names.push_back(path);
      if (names.size() > kMaxFiles) break;
      errno = 0;
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) throw InputError(where + ": cannot list the directory: " + std::strerror(err));
    if (names.empty()) throw InputError(where + ": a directory without .h5 files");
    std::sort(names.begin(), names.end());
    for (const std::string& p : names) push(p, where);
  }

  void add_glob(const std::string& pattern, const std::string& where) {
    glob_t g{};
    const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
    std::vector<std::string> found;
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc && found.size() <= kMaxFiles; ++i) {
        struct stat st {};
        if (::stat(g.gl_pathv[i], &st) == 0 && !S_ISDIR(st.st_mode)) found.push_back(g.gl_pathv[i]);
      }
    }
    ::globfree(&g);
    if (rc == GLOB_NOMATCH || (rc == 0 && found.empty()))
      throw InputError(where + ": no file matches this pattern of " + flag_);
    if (rc == GLOB_ABORTED) throw InputError(where + ": a directory of the pattern cannot be read");
    if (rc != 0) throw InputError(where + ": the pattern cannot be expanded (out of memory)");
    std::sort(found.begin(), found.end());
    for (const std::string& p : found) push(p, where);
  }

  std::string flag_;
  std::vector<std::string> files_;
};

}  // namespace

std::vector<std::string> expand_dataset_paths(const std::string& spec, const std::string& flag) {
  Expander ex(flag);
  std::stringstream ss(spec);
  std::string item;
  bool any = false;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    any = true;
    if (is_list_item(item)) {
      const std::string path = item[0] == '@' ? item.substr(1) : item;
      if (path.empty()) throw UsageError(flag + ": '@' needs the name of a list file: @LIST");
      ex.add_list(path, path);
    } else {
      ex.add_item(item, item);
    }
  }
  if (!any) throw UsageError(flag + " names no file; give F.h5[,G.h5...], a directory, a glob or @LIST");
  return ex.take();
}

}  // namespace seis
