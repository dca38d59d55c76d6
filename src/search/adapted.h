#pragma once
// The public face of applying a search's choices to a model: chosen operators replaced by their
// candidates (instructions and inherited or trained weights), everything else as it was.
#include <map>
#include <string>

#include "graph/graph.h"
#include "rules/rules.h"

namespace gos::search {

// The model with each named compute node computing its chosen candidate. Throws SearchError when
// a name is not a compute node or a candidate's inputs or output differ from the node's.
graph::Graph replace_operators(const graph::Graph& model, const std::map<std::string, rules::Candidate>& chosen);

}  // namespace gos::search
