if hs.status == "Healthy" and obj.status ~= nil and obj.status.weights ~= nil and obj.status.weights ~= "" then
  hs.message = "Weights " .. obj.status.weights .. ". " .. hs.message
end
return hs
